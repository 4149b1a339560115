//! A log-linear latency histogram over nanoseconds (the HdrHistogram layout with 6
//! sub-bucket bits): values below 128 ns are exact, above that each power of two is split
//! into 64 buckets, so a reported percentile is within 1.6% of the true value.
//!
//! ```text
//! index:   0 ..127 | 128..191 | 192..255 | ...
//! value:   0 ..127 | 128..254 | 256..508 | ...   (step 1, 2, 4, ...)
//! ```

const SUB_BITS: u32 = 6;
const SUB: usize = 1 << SUB_BITS; // 64
const BUCKETS: usize = (64 - SUB_BITS as usize) * SUB + SUB; // covers every u64

pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
        }
    }
}

impl Histogram {
    pub fn record(&mut self, ns: u64) {
        self.counts[index(ns)] += 1;
        self.total += 1;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The value at quantile `q` (0.0..=1.0), in nanoseconds: the upper edge of the bucket
    /// holding the `ceil(q * count)`th smallest sample. Zero when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        let rank = ((q * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper(i);
            }
        }
        0
    }
}

fn index(v: u64) -> usize {
    if v < 2 * SUB as u64 {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // position of the top bit, >= 7
    let shift = exp - SUB_BITS; // keep the top 7 bits: 64..=127
    (shift as usize + 1) * SUB + ((v >> shift) as usize - SUB)
}

/// Largest value that lands in bucket `i`.
fn upper(i: usize) -> u64 {
    if i < 2 * SUB {
        return i as u64;
    }
    let shift = (i / SUB - 1) as u32;
    let mantissa = (i % SUB + SUB) as u64;
    // The top bucket's edge is 2^64 - 1: the shift wraps to 0 and the subtraction back.
    ((mantissa + 1) << shift).wrapping_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_bound_their_values() {
        for v in (0..100_000u64).chain([u64::MAX / 3, u64::MAX]) {
            let i = index(v);
            assert!(upper(i) >= v, "v={v} i={i} upper={}", upper(i));
            if i > 0 {
                assert!(upper(i - 1) < v, "v={v} i={i}");
            }
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::default();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), 50);
        assert_eq!(h.quantile(0.99), 99);
    }
}
