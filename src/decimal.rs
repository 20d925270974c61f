//! Integers to decimal text without `core::fmt`. The history file and the
//! JUnit report write a few numbers per test; at 20,000 tests `write!`'s
//! machinery was a visible part of Offload's own CPU time.

/// A scratch buffer that turns integers into decimal text.
pub struct Digits([u8; 39]);

impl Digits {
    pub fn new() -> Digits {
        // 39 digits: the longest u128.
        Digits([0; 39])
    }

    /// `n` in decimal.
    pub fn of(&mut self, n: u128) -> &str {
        let start = self.fill(n);
        self.text(start)
    }

    /// `n` in decimal with at least `width` digits (leading zeros).
    pub fn padded(&mut self, n: u128, width: usize) -> &str {
        let end = self.0.len();
        let digits_start = self.fill(n);
        let start = digits_start.min(end - width.min(end));
        self.0[start..digits_start].fill(b'0');
        self.text(start)
    }

    /// Write `n`'s digits at the end of the buffer; returns where they start.
    fn fill(&mut self, mut n: u128) -> usize {
        let mut i = self.0.len();
        loop {
            i -= 1;
            self.0[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                return i;
            }
        }
    }

    fn text(&self, start: usize) -> &str {
        std::str::from_utf8(&self.0[start..]).expect("ASCII digits")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_padded() {
        let mut d = Digits::new();
        for (n, text) in [
            (0u128, "0"),
            (7, "7"),
            (10, "10"),
            (1_234_567, "1234567"),
            (u128::MAX, "340282366920938463463374607431768211455"),
        ] {
            assert_eq!(d.of(n), text);
        }
        assert_eq!(d.padded(5, 3), "005");
        assert_eq!(d.padded(42, 3), "042");
        assert_eq!(d.padded(999, 3), "999");
        assert_eq!(d.padded(12345, 3), "12345");
        assert_eq!(d.padded(0, 3), "000");
    }
}
