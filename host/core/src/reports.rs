//! Reporting's shared rules: the operator's calendar and the arithmetic of the metric
//! definitions in `REPORTS.md` that needs no database.
//!
//! The store keeps every fact at its instant (ms since the epoch) and aggregates over
//! instants; this module turns the operator's dates into those instants. A day is the
//! operator's local day in their time zone (23 or 25 hours long when the clocks change),
//! a week is the ISO week (Monday to Sunday) and a month the calendar month, and a range
//! `from`–`to` covers both dates whole. The time zone database is bundled, so the same
//! zone name gives the same buckets on every machine.
//!
//! The rules here are the ones both the live reports and their drill-down must agree
//! on: first contact resolution's state, the nearest-rank percentile, and the defaults
//! of each threshold.

use std::fmt;
use std::str::FromStr;

use jiff::civil::Date;
use jiff::tz::TimeZone;

/// An abandon this soon after arrival is a short abandon (the customer dialled or wrote
/// by mistake, or gave up before anyone could have answered).
pub const DEFAULT_SHORT_ABANDON_MS: i64 = 5_000;

/// The service level's default threshold: answered within 20 seconds.
pub const DEFAULT_SERVICE_LEVEL_MS: i64 = 20_000;

/// First contact resolution's default window: no new contact within 7 days.
pub const DEFAULT_FCR_WINDOW_DAYS: i64 = 7;

/// One day, for windows given in days (a window is a duration, not a calendar span).
pub const DAY_MS: i64 = 86_400_000;

/// The longest range one report covers, in days.
pub const MAX_RANGE_DAYS: i64 = 400;

/// Why a report's calendar cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// Not a zone of the IANA database.
    #[error("unknown time zone {0:?}: use an IANA name such as Europe/Paris, or UTC")]
    UnknownZone(String),
    /// Not `YYYY-MM-DD`.
    #[error("{0:?} is not a date (YYYY-MM-DD)")]
    BadDate(String),
    /// `from` after `to`.
    #[error("from ({from}) is after to ({to})")]
    Reversed {
        /// The first date asked for.
        from: String,
        /// The last date asked for.
        to: String,
    },
    /// More than [`MAX_RANGE_DAYS`].
    #[error("the range is longer than {MAX_RANGE_DAYS} days")]
    TooLong,
    /// Not `day`, `week`, `month` or `total`.
    #[error("unknown grouping {0:?}: day, week, month or total")]
    BadPeriod(String),
}

/// A calendar date in the operator's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReportDate(Date);

impl ReportDate {
    /// The date after this one.
    pub fn next(self) -> ReportDate {
        ReportDate(self.0.tomorrow().unwrap_or(self.0))
    }

    /// Days from this date to `later` (0 for the same date).
    pub fn days_until(self, later: ReportDate) -> i64 {
        let mut n = 0;
        let mut d = self;
        while d < later && n <= MAX_RANGE_DAYS + 1 {
            d = d.next();
            n += 1;
        }
        n
    }

    fn monday(self) -> ReportDate {
        let back = i64::from(self.0.weekday().to_monday_zero_offset());
        let mut d = self.0;
        for _ in 0..back {
            d = d.yesterday().unwrap_or(d);
        }
        ReportDate(d)
    }
}

impl FromStr for ReportDate {
    type Err = CalendarError;

    fn from_str(s: &str) -> Result<ReportDate, CalendarError> {
        let bad = || CalendarError::BadDate(s.chars().take(40).collect());
        if s.len() != 10 {
            return Err(bad());
        }
        s.parse::<Date>().map(ReportDate).map_err(|_| bad())
    }
}

impl fmt::Display for ReportDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}",
            self.0.year(),
            self.0.month(),
            self.0.day()
        )
    }
}

/// The operator's time zone (an IANA name; `UTC` by default).
#[derive(Debug, Clone)]
pub struct ReportZone {
    name: String,
    tz: TimeZone,
}

impl PartialEq for ReportZone {
    fn eq(&self, other: &ReportZone) -> bool {
        self.name == other.name
    }
}

impl Default for ReportZone {
    fn default() -> ReportZone {
        ReportZone::utc()
    }
}

impl ReportZone {
    /// UTC.
    pub fn utc() -> ReportZone {
        ReportZone {
            name: "UTC".into(),
            tz: TimeZone::UTC,
        }
    }

    /// The zone of an IANA name such as `Europe/Paris`.
    pub fn parse(name: &str) -> Result<ReportZone, CalendarError> {
        let name = name.trim();
        if name.eq_ignore_ascii_case("utc") {
            return Ok(ReportZone::utc());
        }
        let tz = jiff::tz::db()
            .get(name)
            .map_err(|_| CalendarError::UnknownZone(name.chars().take(64).collect()))?;
        Ok(ReportZone {
            name: name.to_string(),
            tz,
        })
    }

    /// Its IANA name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The first instant of `date` in this zone, ms since the epoch.
    pub fn day_start_ms(&self, date: ReportDate) -> i64 {
        date.0
            .to_zoned(self.tz.clone())
            .and_then(|z| z.start_of_day())
            .map(|z| z.timestamp().as_millisecond())
            .unwrap_or(0)
    }

    /// An instant as local time with its offset, `2025-12-01T09:30:00+01:00`.
    pub fn format_ms(&self, ms: i64) -> String {
        let at = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        at.to_zoned(self.tz.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    }

    /// The local date of an instant.
    pub fn date_of(&self, ms: i64) -> ReportDate {
        let at = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        ReportDate(at.to_zoned(self.tz.clone()).date())
    }
}

/// How a report's rows are cut in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Period {
    /// One row per local day.
    #[default]
    Day,
    /// One row per ISO week (Monday to Sunday).
    Week,
    /// One row per calendar month.
    Month,
    /// One row for the whole range.
    Total,
}

impl Period {
    /// `day`, `week`, `month` or `total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
            Period::Total => "total",
        }
    }
}

impl FromStr for Period {
    type Err = CalendarError;

    fn from_str(s: &str) -> Result<Period, CalendarError> {
        match s {
            "day" => Ok(Period::Day),
            "week" => Ok(Period::Week),
            "month" => Ok(Period::Month),
            "total" => Ok(Period::Total),
            other => Err(CalendarError::BadPeriod(other.chars().take(40).collect())),
        }
    }
}

/// One time cut of a report: `[start_ms, end_ms)`, the local dates `first`–`last`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// `2025-12-01` (day), `2025-W49` (ISO week), `2025-12` (month) or
    /// `2025-12-01/2025-12-31` (total).
    pub key: String,
    /// First local date in the bucket (within the range).
    pub first: ReportDate,
    /// Last local date in the bucket (within the range).
    pub last: ReportDate,
    /// First instant, ms since the epoch.
    pub start_ms: i64,
    /// First instant after the bucket, ms since the epoch.
    pub end_ms: i64,
}

fn bucket_key(period: Period, first: ReportDate, last: ReportDate) -> String {
    match period {
        Period::Day => first.to_string(),
        Period::Week => {
            let w = first.0.iso_week_date();
            format!("{:04}-W{:02}", w.year(), w.week())
        }
        Period::Month => format!("{:04}-{:02}", first.0.year(), first.0.month()),
        Period::Total => format!("{first}/{last}"),
    }
}

fn same_bucket(period: Period, a: ReportDate, b: ReportDate) -> bool {
    match period {
        Period::Day => a == b,
        Period::Week => a.monday() == b.monday(),
        Period::Month => a.0.year() == b.0.year() && a.0.month() == b.0.month(),
        Period::Total => true,
    }
}

/// The buckets of the range `from`–`to` (both dates whole) cut by `period`, in order;
/// the first and last are clipped to the range (a week report starting on a Wednesday
/// has a first week of five days).
pub fn buckets(
    zone: &ReportZone,
    from: ReportDate,
    to: ReportDate,
    period: Period,
) -> Result<Vec<Bucket>, CalendarError> {
    if from > to {
        return Err(CalendarError::Reversed {
            from: from.to_string(),
            to: to.to_string(),
        });
    }
    if from.days_until(to) >= MAX_RANGE_DAYS {
        return Err(CalendarError::TooLong);
    }
    let mut out = Vec::new();
    let mut first = from;
    loop {
        let mut last = first;
        while last < to && same_bucket(period, first, last.next()) {
            last = last.next();
        }
        out.push(Bucket {
            key: bucket_key(period, first, last),
            first,
            last,
            start_ms: zone.day_start_ms(first),
            end_ms: zone.day_start_ms(last.next()),
        });
        if last >= to {
            break;
        }
        first = last.next();
    }
    Ok(out)
}

/// Where a conversation stands on first contact resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FcrState {
    /// Never resolved: not counted.
    Unresolved,
    /// Resolved, no new contact yet, and the window is still open.
    Pending,
    /// Resolved, and the window closed without a new contact.
    Yes,
    /// The customer came back (any channel) within the window after the first
    /// resolution.
    No,
}

impl FcrState {
    /// `unresolved`, `pending`, `yes` or `no`.
    pub fn as_str(self) -> &'static str {
        match self {
            FcrState::Unresolved => "unresolved",
            FcrState::Pending => "pending",
            FcrState::Yes => "yes",
            FcrState::No => "no",
        }
    }
}

/// First contact resolution of a conversation first resolved at `first_resolved_at`
/// whose customer next contacted us (on any channel, after that) at `next_contact_at`,
/// with a window of `window_ms`, as of `now_ms`. A contact exactly at the window's end
/// still counts as a repeat.
pub fn fcr_state(
    first_resolved_at: Option<i64>,
    next_contact_at: Option<i64>,
    window_ms: i64,
    now_ms: i64,
) -> FcrState {
    let Some(resolved) = first_resolved_at else {
        return FcrState::Unresolved;
    };
    let closes = resolved.saturating_add(window_ms);
    match next_contact_at {
        Some(next) if next <= closes => FcrState::No,
        _ if now_ms > closes => FcrState::Yes,
        _ => FcrState::Pending,
    }
}

/// When [`fcr_state`] became `yes` or `no` (the repeat contact, or the window's end);
/// `None` while unresolved or pending.
pub fn fcr_settled_at(
    first_resolved_at: Option<i64>,
    next_contact_at: Option<i64>,
    window_ms: i64,
    now_ms: i64,
) -> Option<i64> {
    let resolved = first_resolved_at?;
    let closes = resolved.saturating_add(window_ms);
    match fcr_state(first_resolved_at, next_contact_at, window_ms, now_ms) {
        FcrState::No => next_contact_at,
        FcrState::Yes => Some(closes),
        _ => None,
    }
}

/// The 1-based rank of the nearest-rank `pct` percentile among `n` sorted values:
/// the smallest value with at least `pct`% of the values at or below it,
/// `ceil(pct × n / 100)` (at least 1).
pub fn nearest_rank(n: u64, pct: u64) -> u64 {
    (pct * n).div_ceil(100).max(1)
}

/// `numerator / denominator`, or `None` when nothing was counted.
pub fn ratio(numerator: i64, denominator: i64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> ReportDate {
        s.parse().unwrap()
    }

    #[test]
    fn days_follow_the_operators_clock_across_daylight_saving() {
        let paris = ReportZone::parse("Europe/Paris").unwrap();
        // 2025-03-30: clocks go forward, the day has 23 hours.
        let b = buckets(&paris, date("2025-03-29"), date("2025-03-31"), Period::Day).unwrap();
        let hours: Vec<i64> = b
            .iter()
            .map(|b| (b.end_ms - b.start_ms) / 3_600_000)
            .collect();
        assert_eq!(hours, [24, 23, 24]);
        assert_eq!(b[0].key, "2025-03-29");
        // Midnight in Paris on 2025-03-29 is 23:00 UTC the day before.
        assert_eq!(b[0].start_ms, 1_743_202_800_000);
        assert_eq!(paris.date_of(1_743_202_800_000), date("2025-03-29"));
        assert_eq!(paris.date_of(1_743_202_799_999), date("2025-03-28"));
        assert_eq!(
            paris.format_ms(1_743_202_800_000),
            "2025-03-29T00:00:00+01:00"
        );
        let utc = ReportZone::parse("utc").unwrap();
        assert_eq!(utc.name(), "UTC");
        assert_eq!(utc.day_start_ms(date("1970-01-02")), DAY_MS);
        assert!(ReportZone::parse("Mars/Olympus").is_err());
    }

    #[test]
    fn weeks_start_on_monday_and_buckets_are_clipped_to_the_range() {
        let utc = ReportZone::utc();
        // 2025-12-03 is a Wednesday.
        let b = buckets(&utc, date("2025-12-03"), date("2025-12-16"), Period::Week).unwrap();
        let keys: Vec<(&str, String, String)> = b
            .iter()
            .map(|b| (b.key.as_str(), b.first.to_string(), b.last.to_string()))
            .collect();
        assert_eq!(
            keys,
            [
                ("2025-W49", "2025-12-03".into(), "2025-12-07".into()),
                ("2025-W50", "2025-12-08".into(), "2025-12-14".into()),
                ("2025-W51", "2025-12-15".into(), "2025-12-16".into()),
            ]
        );
        let m = buckets(&utc, date("2025-11-20"), date("2026-01-05"), Period::Month).unwrap();
        let keys: Vec<&str> = m.iter().map(|b| b.key.as_str()).collect();
        assert_eq!(keys, ["2025-11", "2025-12", "2026-01"]);
        assert_eq!(m[0].end_ms, m[1].start_ms);
        let t = buckets(&utc, date("2025-11-20"), date("2026-01-05"), Period::Total).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].key, "2025-11-20/2026-01-05");
        assert!(buckets(&utc, date("2025-12-02"), date("2025-12-01"), Period::Day).is_err());
        assert!(buckets(&utc, date("2024-01-01"), date("2025-12-01"), Period::Day).is_err());
        assert!("2025-13-01".parse::<ReportDate>().is_err());
        assert!("2025-1-01".parse::<ReportDate>().is_err());
        assert!("fortnight".parse::<Period>().is_err());
    }

    #[test]
    fn fcr_settles_when_the_customer_returns_or_the_window_closes() {
        let w = 7 * DAY_MS;
        assert_eq!(fcr_state(None, None, w, 0), FcrState::Unresolved);
        assert_eq!(fcr_state(Some(0), None, w, w), FcrState::Pending);
        assert_eq!(fcr_state(Some(0), None, w, w + 1), FcrState::Yes);
        assert_eq!(fcr_state(Some(0), Some(w), w, 1), FcrState::No);
        assert_eq!(fcr_state(Some(0), Some(w + 1), w, w + 2), FcrState::Yes);
        assert_eq!(
            fcr_settled_at(Some(0), Some(3 * DAY_MS), w, 0),
            Some(3 * DAY_MS)
        );
        assert_eq!(fcr_settled_at(Some(0), None, w, w + 1), Some(w));
        assert_eq!(fcr_settled_at(Some(0), None, w, 5), None);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        assert_eq!(nearest_rank(0, 90), 1);
        assert_eq!(nearest_rank(1, 90), 1);
        assert_eq!(nearest_rank(2, 90), 2);
        assert_eq!(nearest_rank(10, 90), 9);
        assert_eq!(nearest_rank(11, 90), 10);
        assert_eq!(nearest_rank(100, 90), 90);
        assert_eq!(ratio(1, 2), Some(0.5));
        assert_eq!(ratio(1, 0), None);
    }
}
