//! The remote side: one POSIX `sh` script (GNU or busybox `tail`, `stat`,
//! `find`, `head`, `date`), run through `exec-prefix` when set, and the
//! parsers for what it prints.
//!
//! stdout carries header lines and raw log bytes:
//! ```text
//! CALLCAP1 <nonce> REST <dev:ino> <offset> <len>\n <len bytes of the rotated file>
//! CALLCAP1 <nonce> LOST <dev:ino> <offset>\n
//! CALLCAP1 <nonce> FILE <dev:ino> <start> <size> <fresh|resume|truncated|rotated>\n <bytes from start, unbounded>
//! ```
//! stderr carries `callcap:` control lines (file identity every second,
//! clock answers, errors) and anything the remote tools complain about.
//!
//! The followed file is pinned by an open descriptor (`exec 3<`), so its
//! identity and the bytes `tail` reads always belong to the same inode, even
//! if the file is renamed in between. GNU tail does not use inotify for the
//! `/dev/fd/3` symlink, hence `-s` polling (50 ms, a few syscalls each).
//!
//! No orphans: `tail` and the watcher run in the background while the script
//! reads its stdin; when the channel closes (or sshd dies) stdin reaches EOF
//! and the script kills both. Signals over the channel are not needed (sshd
//! refuses them for root) and no PTY is used (it would rewrite bytes).

use std::time::Duration;

const SCRIPT: &str = r#"p=$1 want=$2 off=$3 back=$4 poll=$5 tpoll=$6 nonce=$7
say() { printf 'callcap:%s\n' "$*" >&2; }
hdr() { printf 'CALLCAP1 %s %s\n' "$nonce" "$*"; }
ident() { stat -L -c '%d:%i %s' "$1" 2>/dev/null; }
for t in tail stat find head date; do
  command -v $t >/dev/null 2>&1 || { say "error the remote host has no '$t' command"; exit 6; }
done
if [ ! -e "$p" ]; then say "error remote file '$p' does not exist"; exit 3; fi
if [ ! -r "$p" ]; then say "error remote file '$p' is not readable by $(id -un 2>/dev/null)"; exit 4; fi
command exec 3<"$p" || { say "error cannot open remote file '$p'"; exit 4; }
set -- $(ident /dev/fd/3)
id=$1 size=$2
if [ -z "$id" ]; then say "error cannot stat '$p' (is coreutils stat installed?)"; exit 5; fi
flag=fresh start=$size
if [ "$want" = - ]; then
  if [ "$back" -gt 0 ]; then
    n=0
    while :; do
      b=$(tail -n "$back" /dev/fd/3 | wc -c)
      set -- $(ident /dev/fd/3)
      if [ "$2" = "$size" ]; then start=$((size - b)); break; fi
      n=$((n + 1)); size=$2
      if [ $n -ge 5 ]; then b=$(head -c "$size" /dev/fd/3 | tail -n "$back" | wc -c); start=$((size - b)); break; fi
    done
  fi
elif [ "$id" = "$want" ]; then
  if [ "$size" -ge "$off" ]; then flag=resume start=$off; else flag=truncated start=0; fi
else
  old=$(find "$(dirname "$p")" -maxdepth 1 -inum "${want#*:}" 2>/dev/null | head -n 1)
  oid=
  if [ -n "$old" ] && command exec 4<"$old"; then set -- $(ident /dev/fd/4); oid=$1 osz=$2; fi
  if [ -n "$oid" ] && [ "$oid" = "$want" ] && [ "$osz" -ge "$off" ]; then
    hdr REST "$want" "$off" $((osz - off))
    tail -c +$((off + 1)) /dev/fd/4 | head -c $((osz - off))
  else
    hdr LOST "$want" "$off"
  fi
  exec 4<&-
  flag=rotated start=0
fi
hdr FILE "$id" "$start" "$size" "$flag"
tail -s "$tpoll" -c +$((start + 1)) -f /dev/fd/3 &
t=$!
exec 3<&-
( while kill -0 $t 2>/dev/null; do
    set -- $(ident "$p")
    say "id ${1:-missing}:${2:-0}"
    sleep "$poll"
  done
  say "tail-exited" ) &
w=$!
while read -r c; do
  case $c in time) say "time $(date +%s.%N)" ;; esac
done
kill $t $w 2>/dev/null
exit 0
"#;

/// Where the follower is in the remote file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FilePos {
    /// `dev:ino` as `stat -c %d:%i` prints it.
    pub id: String,
    pub offset: u64,
}

/// Quotes for a POSIX shell: `'…'` with `'` as `'\''`.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn secs(d: Duration) -> String {
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

/// Parameters of one run of the follow script.
pub(crate) struct FollowArgs<'a> {
    pub exec_prefix: Option<&'a str>,
    pub path: &'a str,
    pub resume: Option<&'a FilePos>,
    pub backfill: u64,
    pub watch_interval: Duration,
    pub tail_poll: Duration,
    pub nonce: &'a str,
}

/// The command line sent in the SSH `exec` request.
pub(crate) fn follow_command(a: &FollowArgs<'_>) -> String {
    let (want, off) = match a.resume {
        Some(p) => (p.id.clone(), p.offset),
        None => ("-".to_string(), 0),
    };
    let mut cmd = String::new();
    if let Some(prefix) = a.exec_prefix.map(str::trim).filter(|p| !p.is_empty()) {
        cmd.push_str(prefix);
        cmd.push(' ');
    }
    let args = [
        a.path.to_string(),
        want,
        off.to_string(),
        a.backfill.to_string(),
        secs(a.watch_interval),
        secs(a.tail_poll),
        a.nonce.to_string(),
    ];
    cmd.push_str("sh -c ");
    cmd.push_str(&shell_quote(SCRIPT));
    cmd.push_str(" callcap-follow");
    for arg in args {
        cmd.push(' ');
        cmd.push_str(&shell_quote(&arg));
    }
    cmd
}

/// A parsed header line of the data stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Header {
    Rest {
        id: String,
        offset: u64,
        len: u64,
    },
    Lost {
        id: String,
        offset: u64,
    },
    File {
        id: String,
        start: u64,
        size: u64,
        flag: String,
    },
}

fn parse_header(line: &[u8], nonce: &str) -> Option<Header> {
    let text = std::str::from_utf8(line).ok()?;
    let mut f = text.trim_end_matches('\r').split(' ');
    if f.next()? != "CALLCAP1" || f.next()? != nonce {
        return None;
    }
    let kind = f.next()?;
    let id = f.next()?.to_string();
    let mut num = || f.next().and_then(|v| v.parse::<u64>().ok());
    match kind {
        "REST" => Some(Header::Rest {
            id,
            offset: num()?,
            len: num()?,
        }),
        "LOST" => Some(Header::Lost { id, offset: num()? }),
        "FILE" => {
            let start = num()?;
            let size = num()?;
            let flag = f.next()?.to_string();
            Some(Header::File {
                id,
                start,
                size,
                flag,
            })
        }
        _ => None,
    }
}

/// What the stdout parser found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    /// A line printed before the first header (a chatty login shell ...).
    Preamble(String),
    Header(Header),
    Data(&'a [u8]),
}

const MAX_HEADER: usize = 4096;
const MAX_PREAMBLE: usize = 64 * 1024;

#[derive(Debug)]
enum State {
    AwaitHeader,
    Rest(u64),
    Follow,
}

/// Splits the stdout byte stream into headers and log bytes.
#[derive(Debug)]
pub(crate) struct StdoutParser {
    nonce: String,
    state: State,
    line: Vec<u8>,
    preamble: usize,
}

impl StdoutParser {
    pub fn new(nonce: &str) -> Self {
        StdoutParser {
            nonce: nonce.to_string(),
            state: State::AwaitHeader,
            line: Vec::new(),
            preamble: 0,
        }
    }

    /// The follow segment has started: bytes can arrive.
    pub fn following(&self) -> bool {
        matches!(self.state, State::Follow)
    }

    /// Feeds one chunk; `out` receives the pieces in order.
    pub fn feed<'a>(&mut self, mut data: &'a [u8], out: &mut Vec<Piece<'a>>) -> Result<(), String> {
        while !data.is_empty() {
            match self.state {
                State::Follow => {
                    out.push(Piece::Data(data));
                    return Ok(());
                }
                State::Rest(left) => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(data.len());
                    let (now, later) = data.split_at(n);
                    out.push(Piece::Data(now));
                    data = later;
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        State::AwaitHeader
                    } else {
                        State::Rest(left)
                    };
                }
                State::AwaitHeader => {
                    let Some(nl) = data.iter().position(|b| *b == b'\n') else {
                        self.line.extend_from_slice(data);
                        if self.line.len() > MAX_HEADER.max(MAX_PREAMBLE) {
                            return Err("the remote command printed no header".into());
                        }
                        return Ok(());
                    };
                    self.line.extend_from_slice(&data[..nl]);
                    data = &data[nl + 1..];
                    let line = std::mem::take(&mut self.line);
                    match parse_header(&line, &self.nonce) {
                        Some(h) => {
                            self.state = match &h {
                                Header::Rest { len: 0, .. } | Header::Lost { .. } => {
                                    State::AwaitHeader
                                }
                                Header::Rest { len, .. } => State::Rest(*len),
                                Header::File { .. } => State::Follow,
                            };
                            out.push(Piece::Header(h));
                        }
                        None => {
                            self.preamble += line.len() + 1;
                            if self.preamble > MAX_PREAMBLE {
                                return Err("the remote command printed no header".into());
                            }
                            let text = String::from_utf8_lossy(&line);
                            out.push(Piece::Preamble(text.chars().take(200).collect()));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// A line on stderr.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ControlLine {
    /// The path's current `dev:ino` and size (`None`: path missing).
    Ident(Option<(String, u64)>),
    /// The remote clock, seconds since the epoch, and the uncertainty of the
    /// reading itself in ms (500 when `date` has no `%N`).
    Time {
        unix: f64,
        slack_ms: u64,
    },
    Error(String),
    TailExited,
    /// Anything else (tool complaints, exec-prefix errors).
    Other(String),
}

pub(crate) fn parse_control(line: &str) -> ControlLine {
    let Some(rest) = line.strip_prefix("callcap:") else {
        return ControlLine::Other(line.to_string());
    };
    let (kind, arg) = rest.split_once(' ').unwrap_or((rest, ""));
    match kind {
        "id" => {
            if arg.starts_with("missing") {
                return ControlLine::Ident(None);
            }
            // dev:ino:size
            match arg.rsplit_once(':') {
                Some((id, size)) => match size.parse::<u64>() {
                    Ok(s) => ControlLine::Ident(Some((id.to_string(), s))),
                    Err(_) => ControlLine::Other(line.to_string()),
                },
                None => ControlLine::Other(line.to_string()),
            }
        }
        "time" => {
            let (whole, frac) = arg.split_once('.').unwrap_or((arg, ""));
            let Ok(whole) = whole.trim().parse::<i64>() else {
                return ControlLine::Other(line.to_string());
            };
            let frac = frac.trim();
            if !frac.is_empty() && frac.bytes().all(|b| b.is_ascii_digit()) {
                let digits = &frac[..frac.len().min(9)];
                let f = digits.parse::<f64>().unwrap_or(0.0) / 10f64.powi(digits.len() as i32);
                ControlLine::Time {
                    unix: whole as f64 + f,
                    slack_ms: 0,
                }
            } else {
                ControlLine::Time {
                    unix: whole as f64 + 0.5,
                    slack_ms: 500,
                }
            }
        }
        "error" => ControlLine::Error(arg.to_string()),
        "tail-exited" => ControlLine::TailExited,
        _ => ControlLine::Other(line.to_string()),
    }
}

/// Splits stderr into lines (bounded length).
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    buf: Vec<u8>,
}

const MAX_STDERR_LINE: usize = 4096;

impl LineSplitter {
    pub fn feed(&mut self, data: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &b in data {
            if b == b'\n' {
                out.push(String::from_utf8_lossy(&self.buf).trim_end().to_string());
                self.buf.clear();
            } else if self.buf.len() < MAX_STDERR_LINE {
                self.buf.push(b);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn quoting_survives_quotes_and_spaces() {
        assert_eq!(shell_quote("/var/log/x.log"), "/var/log/x.log");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn command_has_prefix_and_quoted_args() {
        let pos = FilePos {
            id: "2049:77".into(),
            offset: 1234,
        };
        let c = follow_command(&FollowArgs {
            exec_prefix: Some("pct exec 151 --"),
            path: "/var/log/matrix-synapse/homeserver.log",
            resume: Some(&pos),
            backfill: 0,
            watch_interval: Duration::from_secs(1),
            tail_poll: Duration::from_millis(50),
            nonce: "abc",
        });
        assert!(c.starts_with("pct exec 151 -- sh -c '"), "{c}");
        assert!(c.ends_with(" callcap-follow /var/log/matrix-synapse/homeserver.log 2049:77 1234 0 1.000 0.050 abc"), "{c}");
    }

    #[test]
    fn stdout_parser_frames_segments_in_any_chunking() {
        let stream = b"Welcome!\nCALLCAP1 n REST 1:2 10 5\nabcdeCALLCAP1 n FILE 1:3 0 4 rotated\nline1\nline2\n";
        for split in 1..stream.len() {
            let mut p = StdoutParser::new("n");
            let mut pieces = Vec::new();
            let mut data = Vec::new();
            let mut headers = Vec::new();
            let mut pre = Vec::new();
            for chunk in stream.chunks(split) {
                pieces.clear();
                p.feed(chunk, &mut pieces).unwrap();
                for piece in pieces.drain(..) {
                    match piece {
                        Piece::Data(d) => data.push((headers.len(), d.to_vec())),
                        Piece::Header(h) => headers.push(h),
                        Piece::Preamble(l) => pre.push(l),
                    }
                }
            }
            assert_eq!(pre, vec!["Welcome!".to_string()]);
            assert_eq!(headers.len(), 2);
            let rest: Vec<u8> = data
                .iter()
                .filter(|(h, _)| *h == 1)
                .flat_map(|(_, d)| d.clone())
                .collect();
            let file: Vec<u8> = data
                .iter()
                .filter(|(h, _)| *h == 2)
                .flat_map(|(_, d)| d.clone())
                .collect();
            assert_eq!(rest, b"abcde");
            assert_eq!(file, b"line1\nline2\n");
        }
    }

    #[test]
    fn foreign_header_nonce_is_preamble() {
        let mut p = StdoutParser::new("mine");
        let mut out = Vec::new();
        p.feed(b"CALLCAP1 other FILE 1:1 0 0 fresh\n", &mut out)
            .unwrap();
        assert!(matches!(out[0], Piece::Preamble(_)));
    }

    #[test]
    fn control_lines() {
        assert_eq!(
            parse_control("callcap:id 2049:77:1000"),
            ControlLine::Ident(Some(("2049:77".into(), 1000)))
        );
        assert_eq!(
            parse_control("callcap:id missing:0"),
            ControlLine::Ident(None)
        );
        match parse_control("callcap:time 1700000000.250000000") {
            ControlLine::Time { unix, slack_ms } => {
                assert!((unix - 1_700_000_000.25).abs() < 1e-6);
                assert_eq!(slack_ms, 0);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_control("callcap:time 1700000000.N"),
            ControlLine::Time { slack_ms: 500, .. }
        ));
        assert_eq!(
            parse_control("tail: x"),
            ControlLine::Other("tail: x".into())
        );
    }
}
