//! The queue of 8 kHz audio waiting to be sent: a fixed ring, so queueing never allocates.

/// A ring of samples.
#[derive(Clone, Debug)]
pub(crate) struct Playback {
    buf: Box<[i16]>,
    head: usize,
    len: usize,
}

impl Playback {
    pub(crate) fn new(capacity: usize) -> Self {
        Playback { buf: vec![0; capacity.max(1)].into_boxed_slice(), head: 0, len: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn free(&self) -> usize {
        self.buf.len() - self.len
    }

    /// Appends as much of `samples` as fits; returns how many.
    pub(crate) fn push(&mut self, samples: &[i16]) -> usize {
        let n = samples.len().min(self.free());
        let cap = self.buf.len();
        let tail = (self.head + self.len) % cap;
        let first = n.min(cap - tail);
        self.buf[tail..tail + first].copy_from_slice(&samples[..first]);
        self.buf[..n - first].copy_from_slice(&samples[first..n]);
        self.len += n;
        n
    }

    /// Moves up to `out.len()` samples into `out`; returns how many.
    pub(crate) fn pop(&mut self, out: &mut [i16]) -> usize {
        let n = out.len().min(self.len);
        let cap = self.buf.len();
        let first = n.min(cap - self.head);
        out[..first].copy_from_slice(&self.buf[self.head..self.head + first]);
        out[first..n].copy_from_slice(&self.buf[..n - first]);
        self.head = (self.head + n) % cap;
        self.len -= n;
        n
    }

    /// Copies up to `out.len()` samples from the head into `out` without taking them; returns how
    /// many.
    pub(crate) fn peek(&self, out: &mut [i16]) -> usize {
        let n = out.len().min(self.len);
        let cap = self.buf.len();
        let first = n.min(cap - self.head);
        out[..first].copy_from_slice(&self.buf[self.head..self.head + first]);
        out[first..n].copy_from_slice(&self.buf[..n - first]);
        n
    }

    /// Keeps only the next `keep` samples, faded out linearly to silence; returns how many
    /// samples were dropped.
    pub(crate) fn cut(&mut self, keep: usize) -> usize {
        let keep = keep.min(self.len);
        let cap = self.buf.len();
        for i in 0..keep {
            let idx = (self.head + i) % cap;
            let gain = (keep - i) as f32 / (keep + 1) as f32;
            self.buf[idx] = crate::simd::f32_to_i16(f32::from(self.buf[idx]) * gain);
        }
        let dropped = self.len - keep;
        self.len = keep;
        dropped
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // Tests start virtual time at a real instant.
mod tests {
    use super::*;

    #[test]
    fn wraps_around() {
        let mut p = Playback::new(5);
        assert_eq!(p.push(&[1, 2, 3]), 3);
        let mut out = [0; 2];
        assert_eq!(p.pop(&mut out), 2);
        assert_eq!(out, [1, 2]);
        assert_eq!(p.push(&[4, 5, 6, 7, 8]), 4);
        let mut out = [0; 8];
        assert_eq!(p.pop(&mut out), 5);
        assert_eq!(&out[..5], &[3, 4, 5, 6, 7]);
        assert_eq!(p.len(), 0);
    }

    #[test]
    fn peek_leaves_the_samples() {
        let mut p = Playback::new(4);
        p.push(&[1, 2, 3, 4]);
        let mut out = [0; 2];
        p.pop(&mut out);
        p.push(&[5, 6]);
        let mut peeked = [0; 3];
        assert_eq!(p.peek(&mut peeked), 3);
        assert_eq!(peeked, [3, 4, 5]);
        assert_eq!(p.len(), 4);
    }

    #[test]
    fn cut_fades_what_it_keeps() {
        let mut p = Playback::new(100);
        p.push(&[1000; 100]);
        assert_eq!(p.cut(4), 96);
        let mut out = [0; 10];
        assert_eq!(p.pop(&mut out), 4);
        assert_eq!(&out[..4], &[800, 600, 400, 200]);
    }
}
