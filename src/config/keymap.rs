//! Keys to actions. `keymap.toml` at the repository root is the default
//! keymap, embedded in the binary; a user keymap file (by default
//! `keymap.toml` in the config directory) overrides single actions.
//!
//! ```toml
//! [bindings]
//! mark-fault = "m"                # one key
//! scroll-down = ["j", "down"]     # several keys
//! verdicts = []                   # unbound
//! ```
//!
//! An action named in the user file gets exactly the keys given there; its
//! default keys are freed. Every other action keeps its defaults. A key bound
//! to two actions after the merge is an error naming both, as are unknown
//! actions and keys that do not parse: a bad keymap stops the program with a
//! message before the terminal is taken over, it is never ignored.
//!
//! # Key syntax
//!
//! Optional modifiers `ctrl-`, `alt-`, `shift-` (any case, any order), then a
//! single character (`m`, `G`, `?`, `/`, `]`) or a name: `enter`, `esc`,
//! `tab`, `backtab`, `backspace`, `space`, `up`, `down`, `left`, `right`,
//! `home`, `end`, `pageup`, `pagedown`, `insert`, `delete`, `f1` … `f24`.
//! Characters are case-sensitive (`G` is shift-g and the same key as
//! `shift-g`); with `ctrl-` letters are not (terminals cannot tell `ctrl-C`
//! from `ctrl-c`). `shift-tab` is the same key as `backtab`.
//!
//! # Ctrl-C is reserved
//!
//! Ctrl-C always means [`Action::ExportAndQuit`]: export the bundle and exit
//! without a dialog, the same as SIGINT/SIGTERM/SIGHUP. In raw mode the
//! terminal delivers it as a key, so the keymap is what keeps that promise:
//! [`Keymap::lookup`] maps it before consulting any binding, and a keymap file
//! that binds `ctrl-c` to anything is an error. More keys may be bound to
//! `export-and-quit`; Ctrl-C cannot be taken away from it.
//!
//! Text prompts (search, marker label, quit dialog) read keys as text and
//! handle Enter/Esc themselves; the keymap applies when no prompt is open.

use crate::domain::ke::Ke;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The default keymap, as shipped.
pub const DEFAULT_KEYMAP: &str = include_str!("../../keymap.toml");

/// How the embedded keymap is named in errors.
pub const DEFAULT_KEYMAP_NAME: &str = "keymap.toml (built in)";

/// The key that always exports and quits.
pub const RESERVED_KEY: Key = Key {
    code: KeyCode::Char('c'),
    mods: KeyModifiers::CONTROL,
};

macro_rules! actions {
    ($($(#[$doc:meta])* $variant:ident = $name:literal, $desc:literal;)*) => {
        /// What a key press asks for. Names are kebab-case in keymap files.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Action {
            $($(#[$doc])* $variant,)*
        }

        impl Action {
            /// Every action, in the order the help overlay lists them.
            pub const ALL: &'static [Action] = &[$(Action::$variant,)*];

            /// The kebab-case name used in keymap files.
            pub fn name(self) -> &'static str {
                match self {
                    $(Action::$variant => $name,)*
                }
            }

            /// One line for the help overlay and `callcap keys`.
            pub fn description(self) -> &'static str {
                match self {
                    $(Action::$variant => $desc,)*
                }
            }
        }
    };
}

actions! {
    Quit = "quit", "Quit: confirm the bundle label, export, exit";
    /// Bound to Ctrl-C, always; see the module docs.
    ExportAndQuit = "export-and-quit", "Export the bundle and exit without asking";
    MarkFault = "mark-fault", "Mark a fault now, then name the symptom";
    ListMarkers = "list-markers", "List markers: relabel or delete them";
    NextMarker = "next-marker", "Jump to the next fault marker";
    PrevMarker = "prev-marker", "Jump to the previous fault marker";
    FocusNext = "focus-next", "Focus the next pane";
    FocusPrev = "focus-prev", "Focus the previous pane";
    FocusKe1 = "focus-ke1", "Focus KE-1: OTK upload conflicts";
    FocusKe2 = "focus-ke2", "Focus KE-2: call media keys not decrypting";
    FocusKe3 = "focus-ke3", "Focus KE-3: events missing `algorithm`";
    FocusKe4 = "focus-ke4", "Focus KE-4: MatrixRTC delayed-event timeouts";
    FocusDatabase = "focus-database", "Focus the database pane";
    FocusClient = "focus-client", "Focus the client pane (diag reports, HAR files)";
    FocusChecklist = "focus-checklist", "Focus the capture checklist";
    Zoom = "zoom", "Zoom the focused pane to full screen, or back";
    ScrollUp = "scroll-up", "Scroll up one line (pauses follow)";
    ScrollDown = "scroll-down", "Scroll down one line";
    PageUp = "page-up", "Scroll up one page (pauses follow)";
    PageDown = "page-down", "Scroll down one page";
    ScrollTop = "scroll-top", "Jump to the oldest line (pauses follow)";
    Follow = "follow", "Jump to the newest line and follow";
    ToggleFollow = "toggle-follow", "Pause or resume following new lines";
    Search = "search", "Search the focused pane";
    SearchNext = "search-next", "Next search match";
    SearchPrev = "search-prev", "Previous search match";
    ToggleTrackedOnly = "toggle-tracked-only", "Show only lines of the tracked users, or all";
    ChecklistUp = "checklist-up", "Select the previous checklist step";
    ChecklistDown = "checklist-down", "Select the next checklist step";
    ChecklistToggle = "checklist-toggle", "Tick or untick the selected checklist step";
    Verdicts = "verdicts", "Show the verdicts of the runbook's decision tree";
    Help = "help", "Show or hide this help";
}

impl Action {
    /// The KE pane a `focus-keN` action focuses.
    pub fn ke(self) -> Option<Ke> {
        match self {
            Action::FocusKe1 => Some(Ke::Ke1),
            Action::FocusKe2 => Some(Ke::Ke2),
            Action::FocusKe3 => Some(Ke::Ke3),
            Action::FocusKe4 => Some(Ke::Ke4),
            _ => None,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Action {
    type Err = ();

    fn from_str(s: &str) -> Result<Action, ()> {
        Action::ALL
            .iter()
            .copied()
            .find(|a| a.name() == s)
            .ok_or(())
    }
}

/// A key with its modifiers, normalised so that a binding and the event the
/// terminal sends for it compare equal (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    code: KeyCode,
    mods: KeyModifiers,
}

impl Key {
    pub fn new(code: KeyCode, mods: KeyModifiers) -> Key {
        let mut mods = mods & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let code = match code {
            KeyCode::Char(c) => {
                let c = if mods.contains(KeyModifiers::CONTROL) {
                    c.to_ascii_lowercase()
                } else if mods.contains(KeyModifiers::SHIFT) {
                    c.to_ascii_uppercase()
                } else {
                    c
                };
                // The character already says whether shift was held.
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::Char(c)
            }
            KeyCode::Tab if mods.contains(KeyModifiers::SHIFT) => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            KeyCode::BackTab => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            other => other,
        };
        Key { code, mods }
    }

    pub fn from_event(ev: &KeyEvent) -> Key {
        Key::new(ev.code, ev.modifiers)
    }

    /// Parses the key syntax; the error says what is wrong with it.
    pub fn parse(s: &str) -> Result<Key, String> {
        if s.is_empty() {
            return Err("empty key".into());
        }
        let mut mods = KeyModifiers::NONE;
        let mut rest = s;
        loop {
            let lower = rest.to_ascii_lowercase();
            let (m, len) = if lower.starts_with("ctrl-") {
                (KeyModifiers::CONTROL, 5)
            } else if lower.starts_with("alt-") {
                (KeyModifiers::ALT, 4)
            } else if lower.starts_with("shift-") {
                (KeyModifiers::SHIFT, 6)
            } else {
                break;
            };
            if rest.len() == len {
                return Err(format!("nothing after '{rest}'"));
            }
            mods |= m;
            rest = &rest[len..];
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => KeyCode::Char(c),
            _ => named_key(&rest.to_ascii_lowercase())
                .ok_or_else(|| format!("unknown key name '{rest}'"))?,
        };
        Ok(Key::new(code, mods))
    }
}

fn named_key(name: &str) -> Option<KeyCode> {
    Some(match name {
        "enter" | "return" => KeyCode::Enter,
        "esc" | "escape" => KeyCode::Esc,
        "tab" => KeyCode::Tab,
        "backtab" => KeyCode::BackTab,
        "backspace" => KeyCode::Backspace,
        "space" => KeyCode::Char(' '),
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        "pageup" | "pgup" => KeyCode::PageUp,
        "pagedown" | "pgdn" => KeyCode::PageDown,
        "insert" | "ins" => KeyCode::Insert,
        "delete" | "del" => KeyCode::Delete,
        f => {
            let n: u8 = f.strip_prefix('f')?.parse().ok()?;
            if !(1..=24).contains(&n) {
                return None;
            }
            KeyCode::F(n)
        }
    })
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mods.contains(KeyModifiers::CONTROL) {
            f.write_str("ctrl-")?;
        }
        if self.mods.contains(KeyModifiers::ALT) {
            f.write_str("alt-")?;
        }
        if self.mods.contains(KeyModifiers::SHIFT) {
            f.write_str("shift-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("enter"),
            KeyCode::Esc => f.write_str("esc"),
            KeyCode::Tab => f.write_str("tab"),
            KeyCode::BackTab => f.write_str("shift-tab"),
            KeyCode::Backspace => f.write_str("backspace"),
            KeyCode::Up => f.write_str("up"),
            KeyCode::Down => f.write_str("down"),
            KeyCode::Left => f.write_str("left"),
            KeyCode::Right => f.write_str("right"),
            KeyCode::Home => f.write_str("home"),
            KeyCode::End => f.write_str("end"),
            KeyCode::PageUp => f.write_str("pageup"),
            KeyCode::PageDown => f.write_str("pagedown"),
            KeyCode::Insert => f.write_str("insert"),
            KeyCode::Delete => f.write_str("delete"),
            KeyCode::F(n) => write!(f, "f{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

impl FromStr for Key {
    type Err = String;

    fn from_str(s: &str) -> Result<Key, String> {
        Key::parse(s)
    }
}

/// What is wrong with a keymap file. Each names the file, the key in it
/// and the bad value.
#[derive(Debug, thiserror::Error)]
pub enum KeymapError {
    #[error("cannot read keymap file '{path}': {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("keymap file '{path}': {message}")]
    Parse { path: PathBuf, message: String },
    #[error(
        "keymap file '{path}': key 'bindings.{action}': unknown action '{action}' (`callcap keys` lists them)"
    )]
    UnknownAction { path: PathBuf, action: String },
    #[error("keymap file '{path}': key 'bindings.{action}': unparsable key '{key}': {reason}")]
    BadKey {
        path: PathBuf,
        action: String,
        key: String,
        reason: String,
    },
    #[error(
        "keymap file '{path}': key 'bindings.{action}': expected a key such as \"m\" or a list of keys such as [\"j\", \"down\"], found {found}"
    )]
    BadValue {
        path: PathBuf,
        action: String,
        found: String,
    },
    #[error(
        "keymap file '{path}': key 'bindings.{action}': '{key}' is reserved: it always exports the bundle and quits"
    )]
    Reserved {
        path: PathBuf,
        action: String,
        key: String,
    },
    #[error(
        "keymap file '{path}': duplicate binding '{key}' bound to both '{first}' and '{second}'"
    )]
    Duplicate {
        path: PathBuf,
        key: String,
        first: Action,
        second: Action,
    },
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeymapFile {
    #[serde(default)]
    bindings: toml::Table,
}

/// One file's bindings, in the file's (sorted) order.
type FileBindings = Vec<(Action, Vec<Key>)>;

fn parse_file(text: &str, path: &Path) -> Result<FileBindings, KeymapError> {
    let file: KeymapFile = toml::from_str(text).map_err(|e| {
        let (key, message) = super::describe_toml_error(text, &e);
        KeymapError::Parse {
            path: path.to_path_buf(),
            message: match key {
                Some(k) => format!("key '{k}': {message}"),
                None => message,
            },
        }
    })?;
    let mut out = Vec::new();
    for (name, value) in &file.bindings {
        let action: Action = name.parse().map_err(|()| KeymapError::UnknownAction {
            path: path.to_path_buf(),
            action: name.clone(),
        })?;
        let bad_value = |found: String| KeymapError::BadValue {
            path: path.to_path_buf(),
            action: name.clone(),
            found,
        };
        let texts: Vec<&str> = match value {
            toml::Value::String(s) => vec![s.as_str()],
            toml::Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().ok_or_else(|| bad_value(v.to_string())))
                .collect::<Result<_, _>>()?,
            other => return Err(bad_value(other.to_string())),
        };
        let mut keys: Vec<Key> = Vec::new();
        for t in texts {
            let key = Key::parse(t).map_err(|reason| KeymapError::BadKey {
                path: path.to_path_buf(),
                action: name.clone(),
                key: t.to_string(),
                reason,
            })?;
            if key == RESERVED_KEY {
                return Err(KeymapError::Reserved {
                    path: path.to_path_buf(),
                    action: name.clone(),
                    key: t.to_string(),
                });
            }
            // The same key twice for one action is harmless; keep one.
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        out.push((action, keys));
    }
    Ok(out)
}

/// The live bindings: defaults merged with the user's overrides.
#[derive(Debug, Clone)]
pub struct Keymap {
    /// Keys per action, in [`Action::ALL`] order (Ctrl-C not included).
    keys: Vec<(Action, Vec<Key>)>,
    lookup: HashMap<Key, Action>,
}

impl Keymap {
    /// The embedded default keymap alone.
    pub fn embedded() -> Result<Keymap, KeymapError> {
        Keymap::build(None)
    }

    /// The defaults with `text` (the contents of the user file at `path`)
    /// merged over them.
    pub fn with_overrides(text: &str, path: &Path) -> Result<Keymap, KeymapError> {
        Keymap::build(Some((text, path)))
    }

    /// The defaults with the user file at `path` merged over them.
    pub fn load(path: &Path) -> Result<Keymap, KeymapError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeymapError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Keymap::with_overrides(&text, path)
    }

    /// The defaults, with the user keymap in the config directory merged over
    /// them when that file exists.
    pub fn load_user() -> Result<Keymap, KeymapError> {
        match user_keymap_path() {
            Some(p) if p.exists() => Keymap::load(&p),
            _ => Keymap::embedded(),
        }
    }

    fn build(user: Option<(&str, &Path)>) -> Result<Keymap, KeymapError> {
        let default_path = Path::new(DEFAULT_KEYMAP_NAME);
        let defaults = parse_file(DEFAULT_KEYMAP, default_path)?;
        let overrides = match user {
            Some((text, path)) => parse_file(text, path)?,
            None => Vec::new(),
        };
        let user_path = user.map_or(default_path, |(_, p)| p);

        // Untouched defaults first, then the file's bindings, so a clash
        // names the action that already had the key first.
        let mut lookup: HashMap<Key, Action> = HashMap::new();
        let mut claim = |key: Key, action: Action, path: &Path| match lookup.get(&key) {
            Some(&first) if first != action => Err(KeymapError::Duplicate {
                path: path.to_path_buf(),
                key: key.to_string(),
                first,
                second: action,
            }),
            _ => {
                lookup.insert(key, action);
                Ok(())
            }
        };
        for (action, keys) in &defaults {
            if overrides.iter().any(|(a, _)| a == action) {
                continue;
            }
            for &k in keys {
                claim(k, *action, default_path)?;
            }
        }
        for (action, keys) in &overrides {
            for &k in keys {
                claim(k, *action, user_path)?;
            }
        }

        let mut per_action: HashMap<Action, Vec<Key>> = defaults.into_iter().collect();
        per_action.extend(overrides);
        let keys = Action::ALL
            .iter()
            .map(|&a| (a, per_action.remove(&a).unwrap_or_default()))
            .collect();
        Ok(Keymap { keys, lookup })
    }

    /// The action for a key press. Ctrl-C is always
    /// [`Action::ExportAndQuit`]; key releases map to nothing.
    pub fn lookup(&self, ev: KeyEvent) -> Option<Action> {
        if ev.kind == KeyEventKind::Release {
            return None;
        }
        let key = Key::from_event(&ev);
        if key == RESERVED_KEY {
            return Some(Action::ExportAndQuit);
        }
        self.lookup.get(&key).copied()
    }

    /// The keys bound to `action`, as written in keymap files.
    pub fn keys_for(&self, action: Action) -> Vec<String> {
        let mut out = Vec::new();
        if action == Action::ExportAndQuit {
            out.push(RESERVED_KEY.to_string());
        }
        if let Some((_, ks)) = self.keys.iter().find(|(a, _)| *a == action) {
            out.extend(ks.iter().map(Key::to_string));
        }
        out
    }

    /// Every action with its keys and description, in help order, for the
    /// help overlay and `callcap keys`. Unbound actions have no keys.
    pub fn bindings(&self) -> Vec<(Action, Vec<String>, &'static str)> {
        Action::ALL
            .iter()
            .map(|&a| (a, self.keys_for(a), a.description()))
            .collect()
    }

    /// The bindings as an aligned plain-text table (`callcap keys`).
    pub fn to_table(&self) -> String {
        let rows: Vec<(String, String, &str)> = self
            .bindings()
            .into_iter()
            .map(|(a, ks, d)| {
                let keys = if ks.is_empty() {
                    "(unbound)".to_string()
                } else {
                    ks.join(", ")
                };
                (a.name().to_string(), keys, d)
            })
            .collect();
        let w_keys = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
        let w_action = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        rows.iter()
            .map(|(a, k, d)| format!("{k:<w_keys$}  {a:<w_action$}  {d}\n"))
            .collect()
    }
}

/// Where the user keymap lives: `keymap.toml` in callcap's config directory
/// (`~/.config/callcap/` on Linux).
pub fn user_keymap_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "callcap").map(|d| d.config_dir().join("keymap.toml"))
}

#[cfg(test)]
mod tests;
