use super::*;
use crossterm::event::KeyEventState;

fn press(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
    KeyEvent::new(code, mods)
}

fn ch(c: char) -> KeyEvent {
    press(KeyCode::Char(c), KeyModifiers::NONE)
}

fn user(text: &str) -> Result<Keymap, KeymapError> {
    Keymap::with_overrides(text, Path::new("/home/op/.config/callcap/keymap.toml"))
}

fn err(text: &str) -> String {
    match user(text) {
        Ok(_) => panic!("expected an error for {text:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn embedded_keymap_parses_without_duplicates_and_binds_every_action() -> Result<(), KeymapError> {
    // `build` fails on any duplicate, so parsing is the duplicate check.
    let km = Keymap::embedded()?;
    for (action, keys, description) in km.bindings() {
        assert!(!keys.is_empty(), "{action} has no default key");
        assert!(!description.is_empty());
        for k in &keys {
            // Every shown key reads back as the key it names.
            let parsed = Key::parse(k).map_err(|reason| KeymapError::BadKey {
                path: "display".into(),
                action: action.to_string(),
                key: k.clone(),
                reason,
            })?;
            assert_eq!(parsed.to_string(), *k);
        }
    }
    Ok(())
}

#[test]
fn default_bindings_do_what_the_help_says() -> Result<(), KeymapError> {
    let km = Keymap::embedded()?;
    let cases = [
        (ch('q'), Action::Quit),
        (ch('m'), Action::MarkFault),
        (ch('?'), Action::Help),
        (press(KeyCode::Char('?'), KeyModifiers::SHIFT), Action::Help),
        (ch('/'), Action::Search),
        (ch('n'), Action::SearchNext),
        (
            press(KeyCode::Char('N'), KeyModifiers::SHIFT),
            Action::SearchPrev,
        ),
        (ch('N'), Action::SearchPrev),
        (press(KeyCode::Tab, KeyModifiers::NONE), Action::FocusNext),
        (
            press(KeyCode::BackTab, KeyModifiers::SHIFT),
            Action::FocusPrev,
        ),
        (press(KeyCode::Tab, KeyModifiers::SHIFT), Action::FocusPrev),
        (ch('1'), Action::FocusKe1),
        (ch('4'), Action::FocusKe4),
        (ch('d'), Action::FocusDatabase),
        (ch('c'), Action::FocusClient),
        (ch('s'), Action::FocusChecklist),
        (ch('z'), Action::Zoom),
        (ch('f'), Action::ToggleFollow),
        (ch('G'), Action::Follow),
        (ch('g'), Action::ScrollTop),
        (ch('t'), Action::ToggleTrackedOnly),
        (ch(']'), Action::NextMarker),
        (ch('['), Action::PrevMarker),
        (ch('M'), Action::ListMarkers),
        (ch('v'), Action::Verdicts),
        (ch(' '), Action::ChecklistToggle),
        (ch('j'), Action::ScrollDown),
        (press(KeyCode::Up, KeyModifiers::NONE), Action::ScrollUp),
        (
            press(KeyCode::PageDown, KeyModifiers::NONE),
            Action::PageDown,
        ),
        (
            press(KeyCode::Char('d'), KeyModifiers::CONTROL),
            Action::PageDown,
        ),
        (press(KeyCode::F(1), KeyModifiers::NONE), Action::Help),
        (
            press(KeyCode::Char('c'), KeyModifiers::CONTROL),
            Action::ExportAndQuit,
        ),
    ];
    for (ev, want) in cases {
        assert_eq!(km.lookup(ev), Some(want), "{ev:?}");
    }
    assert_eq!(km.lookup(ch('Q')), None);
    assert_eq!(
        km.lookup(press(KeyCode::Char('m'), KeyModifiers::ALT)),
        None
    );
    Ok(())
}

#[test]
fn key_releases_do_nothing_and_repeats_act() -> Result<(), KeymapError> {
    let km = Keymap::embedded()?;
    let release = KeyEvent::new_with_kind(
        KeyCode::Char('j'),
        KeyModifiers::NONE,
        KeyEventKind::Release,
    );
    assert_eq!(km.lookup(release), None);
    let repeat = KeyEvent::new_with_kind_and_state(
        KeyCode::Char('j'),
        KeyModifiers::NONE,
        KeyEventKind::Repeat,
        KeyEventState::NONE,
    );
    assert_eq!(km.lookup(repeat), Some(Action::ScrollDown));
    Ok(())
}

#[test]
fn an_override_replaces_the_actions_keys_and_frees_its_defaults() -> Result<(), KeymapError> {
    let km = user("[bindings]\nmark-fault = [\"f12\", \"ctrl-k\"]\n")?;
    assert_eq!(km.lookup(ch('m')), None, "the old default is freed");
    assert_eq!(
        km.lookup(press(KeyCode::F(12), KeyModifiers::NONE)),
        Some(Action::MarkFault)
    );
    assert_eq!(
        km.lookup(press(KeyCode::Char('k'), KeyModifiers::CONTROL)),
        Some(Action::MarkFault)
    );
    assert_eq!(km.keys_for(Action::MarkFault), ["f12", "ctrl-k"]);
    // Everything else keeps its defaults.
    assert_eq!(km.lookup(ch('q')), Some(Action::Quit));
    Ok(())
}

#[test]
fn a_freed_key_can_be_given_to_another_action() -> Result<(), KeymapError> {
    let km = user("[bindings]\nmark-fault = \"f12\"\nquit = [\"m\", \"q\"]\n")?;
    assert_eq!(km.lookup(ch('m')), Some(Action::Quit));
    assert_eq!(
        km.lookup(press(KeyCode::F(12), KeyModifiers::NONE)),
        Some(Action::MarkFault)
    );
    Ok(())
}

#[test]
fn an_empty_list_unbinds_and_ctrl_c_still_exports() -> Result<(), KeymapError> {
    let km = user("[bindings]\nquit = []\nexport-and-quit = \"ctrl-q\"\n")?;
    assert_eq!(km.lookup(ch('q')), None);
    assert!(km.keys_for(Action::Quit).is_empty());
    assert_eq!(km.keys_for(Action::ExportAndQuit), ["ctrl-c", "ctrl-q"]);
    assert_eq!(
        km.lookup(press(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        Some(Action::ExportAndQuit)
    );
    assert_eq!(
        km.lookup(press(KeyCode::Char('q'), KeyModifiers::CONTROL)),
        Some(Action::ExportAndQuit)
    );
    Ok(())
}

#[test]
fn an_empty_user_file_changes_nothing() -> Result<(), KeymapError> {
    let a = Keymap::embedded()?.bindings();
    assert_eq!(user("")?.bindings(), a);
    assert_eq!(user("[bindings]\n")?.bindings(), a);
    Ok(())
}

#[test]
fn unknown_action_is_an_error_naming_file_key_and_value() {
    assert_eq!(
        err("[bindings]\nfoo = \"x\"\n"),
        "keymap file '/home/op/.config/callcap/keymap.toml': key 'bindings.foo': \
         unknown action 'foo' (`callcap keys` lists them)"
    );
}

#[test]
fn unparsable_keys_are_errors_naming_file_key_and_value() {
    assert_eq!(
        err("[bindings]\nquit = \"ctrl-\"\n"),
        "keymap file '/home/op/.config/callcap/keymap.toml': key 'bindings.quit': \
         unparsable key 'ctrl-': nothing after 'ctrl-'"
    );
    assert_eq!(
        err("[bindings]\nzoom = [\"z\", \"hyper-z\"]\n"),
        "keymap file '/home/op/.config/callcap/keymap.toml': key 'bindings.zoom': \
         unparsable key 'hyper-z': unknown key name 'hyper-z'"
    );
    assert_eq!(
        err("[bindings]\nhelp = \"f25\"\n"),
        "keymap file '/home/op/.config/callcap/keymap.toml': key 'bindings.help': \
         unparsable key 'f25': unknown key name 'f25'"
    );
    assert_eq!(
        err("[bindings]\nhelp = \"\"\n"),
        "keymap file '/home/op/.config/callcap/keymap.toml': key 'bindings.help': \
         unparsable key '': empty key"
    );
}

#[test]
fn duplicate_binding_names_both_actions() {
    // `m` still belongs to mark-fault, which the file does not rebind.
    assert_eq!(
        err("[bindings]\nquit = \"m\"\n"),
        "keymap file '/home/op/.config/callcap/keymap.toml': \
         duplicate binding 'm' bound to both 'mark-fault' and 'quit'"
    );
    // Two actions in the file, and the same key spelt two ways.
    assert_eq!(
        err("[bindings]\nverdicts = \"shift-x\"\nzoom = \"X\"\n"),
        "keymap file '/home/op/.config/callcap/keymap.toml': \
         duplicate binding 'X' bound to both 'verdicts' and 'zoom'"
    );
}

#[test]
fn ctrl_c_cannot_be_bound() {
    assert_eq!(
        err("[bindings]\nmark-fault = \"ctrl-C\"\n"),
        "keymap file '/home/op/.config/callcap/keymap.toml': key 'bindings.mark-fault': \
         'ctrl-C' is reserved: it always exports the bundle and quits"
    );
}

#[test]
fn wrong_value_types_and_sections_are_errors() {
    assert_eq!(
        err("[bindings]\nquit = 5\n"),
        "keymap file '/home/op/.config/callcap/keymap.toml': key 'bindings.quit': \
         expected a key such as \"m\" or a list of keys such as [\"j\", \"down\"], found 5"
    );
    assert_eq!(
        err("[bindings]\nquit = [\"q\", 5]\n"),
        "keymap file '/home/op/.config/callcap/keymap.toml': key 'bindings.quit': \
         expected a key such as \"m\" or a list of keys such as [\"j\", \"down\"], found 5"
    );
    assert_eq!(
        err("[keys]\nquit = \"q\"\n"),
        "keymap file '/home/op/.config/callcap/keymap.toml': key 'keys': \
         unknown key 'keys', expected 'bindings'"
    );
    assert_eq!(
        err("[bindings\n"),
        "keymap file '/home/op/.config/callcap/keymap.toml': line 1, column 10: \
         unclosed table, expected ']'"
    );
}

#[test]
fn load_reads_the_file_and_names_it_when_missing() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("keymap.toml");
    std::fs::write(&path, "[bindings]\nhelp = \"h\"\n")?;
    let km = Keymap::load(&path)?;
    assert_eq!(km.lookup(ch('h')), Some(Action::Help));
    assert_eq!(km.lookup(ch('?')), None);

    let missing = dir.path().join("nope.toml");
    let e = Keymap::load(&missing)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.starts_with(&format!(
            "cannot read keymap file '{}': ",
            missing.display()
        )),
        "{e}"
    );
    Ok(())
}

#[test]
fn key_syntax_normalises_spellings() {
    let same = [
        ("G", "shift-g"),
        ("G", "SHIFT-G"),
        ("shift-tab", "backtab"),
        ("ctrl-c", "CTRL-C"),
        ("ctrl-c", "ctrl-shift-c"),
        ("space", " "),
        ("pageup", "PgUp"),
        ("esc", "escape"),
        ("ctrl-alt-x", "alt-ctrl-x"),
        ("-", "-"),
        ("ctrl--", "ctrl--"),
    ];
    for (a, b) in same {
        assert_eq!(Key::parse(a), Key::parse(b), "{a} vs {b}");
        assert!(Key::parse(a).is_ok(), "{a}");
    }
    assert_ne!(Key::parse("g"), Key::parse("G"));
    assert_ne!(Key::parse("up"), Key::parse("shift-up"));
    assert_eq!(
        Key::parse("shift-up").map(|k| k.to_string()),
        Ok("shift-up".into())
    );
    assert_eq!(
        Key::parse("Enter").map(|k| k.to_string()),
        Ok("enter".into())
    );
    assert_eq!(
        Key::parse("alt-").err(),
        Some("nothing after 'alt-'".into())
    );
    assert_eq!(
        Key::parse("shift-").err(),
        Some("nothing after 'shift-'".into())
    );
    assert_eq!(
        Key::parse("ctrl-alt-").err(),
        Some("nothing after 'alt-'".into())
    );
    assert_eq!(
        Key::parse("nope").err(),
        Some("unknown key name 'nope'".into())
    );
}

#[test]
fn action_names_round_trip_and_table_lists_every_action() -> Result<(), KeymapError> {
    for &a in Action::ALL {
        assert_eq!(a.name().parse::<Action>(), Ok(a));
    }
    let table = Keymap::embedded()?.to_table();
    assert_eq!(table.lines().count(), Action::ALL.len());
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("m ") && l.contains("mark-fault")),
        "{table}"
    );
    assert!(table.contains("ctrl-c"));
    Ok(())
}
