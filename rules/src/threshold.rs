//! One threshold: operator, warning and critical limits, hysteresis; and the level a value
//! has under it.

use serde_json::Value;

/// Hysteresis when none is configured: a `>` alert at 95 recovers below 93.1.
pub const DEFAULT_HYSTERESIS: f64 = 0.02;

/// How bad a metric is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// Within limits.
    Ok,
    /// Past `warning`.
    Warning,
    /// Past `critical`.
    Critical,
    /// Cannot be judged (not a number; a Nagios code outside 0-3).
    Unknown,
}

impl Level {
    /// Upper-case name, as in notifications.
    pub fn name(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Warning => "WARNING",
            Level::Critical => "CRITICAL",
            Level::Unknown => "UNKNOWN",
        }
    }

    /// Parses [`Level::name`].
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "OK" => Level::Ok,
            "WARNING" => Level::Warning,
            "CRITICAL" => Level::Critical,
            "UNKNOWN" => Level::Unknown,
            _ => return None,
        })
    }

    /// Rank for escalation: OK 0, WARNING and UNKNOWN 1, CRITICAL 2.
    pub fn severity(self) -> u8 {
        match self {
            Level::Ok => 0,
            Level::Warning | Level::Unknown => 1,
            Level::Critical => 2,
        }
    }
}

/// How a value is compared with the limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// A Nagios exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    Nagios,
}

impl Op {
    /// From the configuration's spelling.
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s {
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            "<=" => Op::Le,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            "nagios" => Op::Nagios,
            _ => return None,
        })
    }

    /// The configuration's spelling.
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Nagios => "nagios",
        }
    }

    fn breached(self, value: f64, limit: f64) -> bool {
        match self {
            Op::Gt => value > limit,
            Op::Ge => value >= limit,
            Op::Lt => value < limit,
            Op::Le => value <= limit,
            Op::Eq => value == limit,
            Op::Ne => value != limit,
            Op::Nagios => false,
        }
    }

    /// Whether an alert at `limit` is still held by hysteresis at `value`: a `>`/`>=` alert
    /// recovers only below `limit - |limit| * h`, a `<`/`<=` one only above
    /// `limit + |limit| * h` (the same as `limit * (1 -/+ h)` for positive limits).
    fn held(self, value: f64, limit: f64, h: f64) -> bool {
        let band = limit.abs() * h;
        // Without a band (a limit of 0, or no hysteresis) only a breach holds.
        self.breached(value, limit)
            || (band > 0.0
                && match self {
                    Op::Gt | Op::Ge => value >= limit - band,
                    Op::Lt | Op::Le => value <= limit + band,
                    Op::Eq | Op::Ne | Op::Nagios => false,
                })
    }
}

/// One configured threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    /// WARNING limit.
    pub warning: Option<f64>,
    /// CRITICAL limit.
    pub critical: Option<f64>,
    /// Comparison.
    pub op: Op,
    /// Fraction of the limit a value must move back past before the alert recovers.
    pub hysteresis: f64,
    /// Template for the alert's text.
    pub display: Option<String>,
    /// Whether it is checked.
    pub enabled: bool,
}

/// The level of one value.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// The level.
    pub level: Level,
    /// The value as a number, if it is one.
    pub value: Option<f64>,
    /// The limit that gives the level (none for OK, UNKNOWN and Nagios).
    pub limit: Option<f64>,
}

/// A value as a number: numbers, and booleans as 1 and 0.
pub fn numeric(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

impl Threshold {
    /// The level of `value`, given the level the metric has now (for hysteresis).
    pub fn evaluate(&self, value: &Value, current: Level) -> Evaluation {
        let Some(v) = numeric(value) else {
            return Evaluation {
                level: Level::Unknown,
                value: None,
                limit: None,
            };
        };
        if self.op == Op::Nagios {
            let level = match v {
                0.0 => Level::Ok,
                1.0 => Level::Warning,
                2.0 => Level::Critical,
                _ => Level::Unknown,
            };
            return Evaluation {
                level,
                value: Some(v),
                limit: None,
            };
        }
        let breached = |limit: Option<f64>| limit.is_some_and(|l| self.op.breached(v, l));
        let held = |limit: Option<f64>| limit.is_some_and(|l| self.op.held(v, l, self.hysteresis));
        let mut level = if breached(self.critical) {
            Level::Critical
        } else if breached(self.warning) {
            Level::Warning
        } else {
            Level::Ok
        };
        // Hysteresis: an alert steps down only once the value is clear of its band.
        if current == Level::Critical && level < Level::Critical && held(self.critical) {
            level = Level::Critical;
        }
        if matches!(current, Level::Critical | Level::Warning)
            && level == Level::Ok
            && held(self.warning)
        {
            level = Level::Warning;
        }
        let limit = match level {
            Level::Critical => self.critical,
            Level::Warning => self.warning,
            Level::Ok | Level::Unknown => None,
        };
        Evaluation {
            level,
            value: Some(v),
            limit,
        }
    }

    /// Where an alert at `level` recovers (for display: "recovers < 93.1").
    pub fn recovery_point(&self, level: Level) -> Option<f64> {
        let limit = match level {
            Level::Critical => self.critical,
            Level::Warning => self.warning,
            _ => None,
        }?;
        match self.op {
            Op::Gt | Op::Ge => Some(limit - limit.abs() * self.hysteresis),
            Op::Lt | Op::Le => Some(limit + limit.abs() * self.hysteresis),
            Op::Eq | Op::Ne | Op::Nagios => None,
        }
    }
}
