//! The console's geometry in rows and columns, which the view pages by and
//! the renderer lays the screen out with (`ui::layout` cuts its rectangles
//! by these numbers). It lives with the view so that the view needs nothing
//! from the renderer.

/// The smallest terminal the console is drawn in.
pub const MIN_WIDTH: u16 = 100;
pub const MIN_HEIGHT: u16 = 30;
/// From this width on the database, client and checklist panes move into a
/// side column, and the KE panes take the whole height.
pub const WIDE: u16 = 160;
pub const STATUS_ROWS: u16 = 2;
pub const VERDICT_ROWS: u16 = 1;
pub const TIMELINE_ROWS: u16 = 3;
/// A KE pane's rows that hold no text: its two borders and its sparkline.
const KE_CHROME_ROWS: u16 = 3;

/// Rows between the verdict strip and the timeline.
pub fn main_rows(height: u16) -> u16 {
    height.saturating_sub(STATUS_ROWS + VERDICT_ROWS + TIMELINE_ROWS)
}

/// Rows of the database, client and checklist strip under the KE panes
/// (below [`WIDE`]).
pub fn bottom_rows(main_rows: u16) -> u16 {
    (main_rows / 3).clamp(8, 14)
}

/// Text rows of a KE pane (inside the border, below the sparkline) in a
/// terminal of `width` x `height`: the view's page size. The KE panes are a
/// 2x2 grid whose upper row gets the odd row; zoomed, one fills the main
/// area.
pub fn ke_text_rows(width: u16, height: u16, zoomed: bool) -> usize {
    let (width, height) = (width.max(MIN_WIDTH), height.max(MIN_HEIGHT));
    let main = main_rows(height);
    let pane = if zoomed {
        main
    } else if width >= WIDE {
        main.div_ceil(2)
    } else {
        main.saturating_sub(bottom_rows(main)).div_ceil(2)
    };
    pane.saturating_sub(KE_CHROME_ROWS) as usize
}
