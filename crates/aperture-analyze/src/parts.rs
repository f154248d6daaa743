//! Splitting long media in time, for analyzers whose jobs run in parts
//! ([`Analyzer::split`](crate::Analyzer::split)).

use aperture_catalog::Stretch;

/// Stretches of `chunk_ms` covering `duration_ms`, the last one open-ended (it runs to the end
/// of the file, however long that turns out to be); `None` when one stretch covers it all.
/// A last stretch shorter than a tenth of a chunk joins the one before it.
///
/// ```
/// use aperture_analyze::parts::even;
///
/// assert_eq!(even(25_000, 10_000), Some(vec![(0, Some(10_000)), (10_000, Some(20_000)), (20_000, None)]));
/// assert_eq!(even(20_500, 10_000), Some(vec![(0, Some(10_000)), (10_000, None)]));
/// assert_eq!(even(10_000, 10_000), None);
/// ```
pub fn even(duration_ms: u64, chunk_ms: u64) -> Option<Vec<Stretch>> {
    let chunk_ms = chunk_ms.max(1);
    let mut count = duration_ms.div_ceil(chunk_ms);
    if count > 1 && duration_ms - (count - 1) * chunk_ms < chunk_ms / 10 {
        count -= 1;
    }
    if count <= 1 {
        return None;
    }
    Some(
        (0..count)
            .map(|n| {
                let end = (n + 1 < count).then_some((n + 1) * chunk_ms);
                (n * chunk_ms, end)
            })
            .collect(),
    )
}
