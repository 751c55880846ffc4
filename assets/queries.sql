-- callcap's read-only queries against the Synapse database: runbook §1,
-- adapted to the real schema (Synapse 1.155+, schema 94; PostgreSQL 13+).
--
-- Each query is a block that starts with `-- name: <name>`. Directives:
--   -- key: <columns>            what identifies a row between two polls (diffs)
--   -- params: <kinds>           what $1, $2 … are bound to, in order:
--        user_id     [call] user-id                  (text)
--        device_id   [call] device-id                (text)
--        users       user-id + participants          (text[])
--        localparts  localparts of the tracked users of our homeserver (text[])
--        event_ids   KE-3 event ids not looked up yet (text[])
--   -- requires: table(col, …)   skipped, with a problem, when any is absent
-- The SELECT list is one item per line between a line `SELECT` and a line
-- starting with `FROM`. An item ending in `-- optional: table.column` is
-- dropped (and the adaptation reported) when that column is absent.
--
-- Values are never spliced into this text: everything variable is a $n
-- parameter. Every query runs in one `READ ONLY` transaction per poll.
-- Row lists are capped at 10 000 rows (LIMIT 10001 detects truncation).

-- name: otk_inventory
-- key: algorithm, key_id
-- params: user_id, device_id
-- requires: e2e_one_time_keys_json(user_id, device_id, algorithm, key_id, key_json)
-- key_json holds the public key and its signatures (what Synapse compares,
-- minus the signatures, when it answers "One time key … already exists").
SELECT
    user_id,
    device_id,
    algorithm,
    key_id,
    ts_added_ms,  -- optional: e2e_one_time_keys_json.ts_added_ms
    key_json
FROM e2e_one_time_keys_json
WHERE user_id = $1 AND device_id = $2
ORDER BY algorithm, key_id
LIMIT 10001

-- name: otk_counts
-- key: algorithm
-- params: user_id, device_id
-- requires: e2e_one_time_keys_json(user_id, device_id, algorithm)
-- Like Synapse's /sync count, signed_curve25519 is always reported (0 when
-- the device holds none), so exhaustion shows as a row, not an absence.
SELECT
    algorithm,
    coalesce(c.count, 0) AS count
FROM (
    SELECT algorithm, count(*) AS count
    FROM e2e_one_time_keys_json
    WHERE user_id = $1 AND device_id = $2
    GROUP BY algorithm
) AS c
FULL JOIN (SELECT 'signed_curve25519'::text AS algorithm) AS s USING (algorithm)
ORDER BY algorithm

-- name: fallback_keys
-- key: algorithm
-- params: user_id, device_id
-- requires: e2e_fallback_keys_json(user_id, device_id, algorithm, key_id, key_json, used)
-- Current Synapse has no ts_added_ms here (the runbook's SQL assumes one).
SELECT
    user_id,
    device_id,
    algorithm,
    key_id,
    used,
    ts_added_ms,  -- optional: e2e_fallback_keys_json.ts_added_ms
    key_json
FROM e2e_fallback_keys_json
WHERE user_id = $1 AND device_id = $2
ORDER BY algorithm
LIMIT 10001

-- name: device_inbox_pending
-- key: user_id, device_id
-- params: users
-- requires: device_inbox(user_id, device_id, stream_id)
-- Rows leave device_inbox when the device syncs past them: a growing count
-- means the device is not draining. max_stream_id rising with a flat count
-- means new messages arrive and are drained.
SELECT
    user_id,
    device_id,
    count(*) AS pending,
    min(stream_id) AS min_stream_id,
    max(stream_id) AS max_stream_id
FROM device_inbox
WHERE user_id = ANY($1)
GROUP BY user_id, device_id
ORDER BY user_id, device_id
LIMIT 10001

-- name: devices
-- key: user_id, device_id
-- params: users
-- requires: devices(user_id, device_id)
-- Current Synapse has no `ts` column (the runbook's SQL assumes one).
SELECT
    user_id,
    device_id,
    display_name,  -- optional: devices.display_name
    last_seen,  -- optional: devices.last_seen
    ip,  -- optional: devices.ip
    user_agent,  -- optional: devices.user_agent
    hidden,  -- optional: devices.hidden
    ts  -- optional: devices.ts
FROM devices
WHERE user_id = ANY($1)
ORDER BY user_id, device_id
LIMIT 10001

-- name: delayed_events
-- key: user_localpart, delay_id
-- params: localparts
-- requires: delayed_events(user_localpart, delay_id, room_id, event_type, send_ts)
-- MSC4140 (Synapse 1.116+). The table holds the localpart only; send_ts moves
-- forward on every restart, so a change here is a restart that reached the HS.
SELECT
    user_localpart,
    delay_id,
    device_id,  -- optional: delayed_events.device_id
    room_id,
    event_type,
    state_key,  -- optional: delayed_events.state_key
    delay,  -- optional: delayed_events.delay
    send_ts,
    is_processed,  -- optional: delayed_events.is_processed
    sticky_duration_ms  -- optional: delayed_events.sticky_duration_ms
FROM delayed_events
WHERE user_localpart = ANY($1)
ORDER BY user_localpart, send_ts, delay_id
LIMIT 10001

-- name: event_lookup
-- key: event_id
-- params: event_ids
-- requires: event_json(event_id, room_id, json), events(event_id, type, sender, origin_server_ts)
-- One row per requested id (found = false when the HS does not hold it).
-- algorithm_present is false when content.algorithm is absent or JSON null;
-- content is the stored (encrypted) content, to tell absent from mis-shaped.
SELECT
    req.event_id,
    ej.event_id IS NOT NULL AS found,
    ej.room_id,
    e.type,
    e.sender,
    e.origin_server_ts,
    CASE WHEN ej.event_id IS NULL THEN NULL ELSE coalesce(json_typeof(ej.json::json -> 'content' -> 'algorithm') <> 'null', false) END AS algorithm_present,
    ej.json::json -> 'content' ->> 'algorithm' AS algorithm,
    ej.json::json -> 'content' AS content,
    EXISTS (SELECT 1 FROM redactions AS r WHERE r.redacts = req.event_id) AS redacted  -- optional: redactions.redacts
FROM unnest($1::text[]) AS req(event_id)
LEFT JOIN event_json AS ej ON ej.event_id = req.event_id
LEFT JOIN events AS e ON e.event_id = req.event_id
ORDER BY req.event_id
