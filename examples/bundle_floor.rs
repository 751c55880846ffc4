//! Benchmark: what `callcap analyze`'s bundle costs before a line is
//! scanned. The bundle holds the whole server log and the KE logs, each
//! with its SHA-256 (the manifest's contract); this program does only that
//! work, on callcap's threads and in its buffers: a reader thread reads the
//! log in 1 MiB buffers, one thread writes and hashes the full copy (the
//! journal writer), the main thread writes and hashes `KE_BYTES` of it
//! spread evenly over the buffers (the committing thread's KE logs).
//! Buffers are reused, as callcap's are. Nothing is scanned, redacted or
//! numbered, so its time is a floor under any `analyze` of the same log.
//!
//! `cargo run --release --example bundle_floor -- LOG OUT_DIR KE_BYTES`;
//! `FLOOR=1 bench/analyze.sh` runs it as a contender (KE_BYTES from the
//! warm-up's bundle).

use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::sync::mpsc::{channel, sync_channel};

const BUFFER: usize = 1024 * 1024;

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, log, out, ke_bytes] = args.as_slice() else {
        eprintln!("usage: bundle_floor LOG OUT_DIR KE_BYTES");
        std::process::exit(2);
    };
    let ke_bytes: u64 = ke_bytes
        .parse()
        .map_err(|e| io::Error::other(format!("KE_BYTES: {e}")))?;
    let mut file = File::open(log)?;
    let log_bytes = file.metadata()?.len().max(1);
    let out = Path::new(out).join("server");
    std::fs::create_dir_all(&out)?;
    let mut copy = File::create(out.join("homeserver.log"))?;
    let mut ke = BufWriter::with_capacity(BUFFER, File::create(out.join("KE.log"))?);

    let (to_reader, spent) = channel::<Vec<u8>>();
    let (to_writer, full) = sync_channel::<Vec<u8>>(2);
    let (to_main, read) = sync_channel::<Vec<u8>>(2);
    let (back, written) = channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || -> io::Result<()> {
        loop {
            let mut buf = spent
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(BUFFER + 64 * 1024));
            buf.clear();
            if (&mut file).take(BUFFER as u64).read_to_end(&mut buf)? == 0 {
                return Ok(());
            }
            if to_main.send(buf).is_err() {
                return Ok(());
            }
        }
    });
    let writer = std::thread::spawn(move || -> io::Result<String> {
        let mut hash = Sha256::new();
        for buf in full {
            hash.update(&buf);
            copy.write_all(&buf)?;
            let _ = back.send(buf);
        }
        Ok(hex::encode(hash.finalize()))
    });
    let mut ke_hash = Sha256::new();
    let mut ke_written = 0u64;
    let mut log_read = 0u64;
    for buf in read {
        log_read += buf.len() as u64;
        // The KE logs' share of what has been read so far.
        let due = (u128::from(log_read) * u128::from(ke_bytes) / u128::from(log_bytes)) as u64;
        let n = (due.saturating_sub(ke_written) as usize).min(buf.len());
        ke_hash.update(&buf[..n]);
        ke.write_all(&buf[..n])?;
        ke_written += n as u64;
        if to_writer.send(buf).is_err() {
            break;
        }
        while let Ok(buf) = written.try_recv() {
            let _ = to_reader.send(buf);
        }
    }
    drop(to_writer);
    ke.flush()?;
    reader
        .join()
        .map_err(|_| io::Error::other("the reader panicked"))??;
    let full_hash = writer
        .join()
        .map_err(|_| io::Error::other("the writer panicked"))??;
    println!(
        "{full_hash}  homeserver.log ({log_read} bytes)\n{}  KE.log ({ke_written} bytes)",
        hex::encode(ke_hash.finalize())
    );
    Ok(())
}
