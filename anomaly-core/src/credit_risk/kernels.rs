//! The vector kernels of the block QuickScorer (`quick.rs`): one
//! feature's splits against a block's rows, chosen once per process by
//! what the CPU has. Autovectorised, the portable scan compiled to a branch
//! per row: 1.7x slower than the walk on forests, so x86-64 gets its
//! kernels written with intrinsics (the results are the same bits: the
//! comparisons are exact and the masks the same).

#[cfg(target_arch = "x86_64")]
pub(super) use avx512::{Clear, Gather, Wide};

/// The value types' AVX-512 loads (none off x86-64).
#[cfg(not(target_arch = "x86_64"))]
pub(crate) trait Wide {}
#[cfg(not(target_arch = "x86_64"))]
impl Wide for f32 {}
#[cfg(not(target_arch = "x86_64"))]
impl Wide for f64 {}
/// The raw scores' AVX-512 gathers (none off x86-64).
#[cfg(not(target_arch = "x86_64"))]
pub(crate) trait Gather {}
#[cfg(not(target_arch = "x86_64"))]
impl Gather for f32 {}
#[cfg(not(target_arch = "x86_64"))]
impl Gather for f64 {}
/// The leaf-set words' AVX-512 clears (none off x86-64).
#[cfg(not(target_arch = "x86_64"))]
pub(crate) trait Clear {}
#[cfg(not(target_arch = "x86_64"))]
impl Clear for u32 {}
#[cfg(not(target_arch = "x86_64"))]
impl Clear for u64 {}

/// A scan's instruction set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kernel {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Portable,
}

/// The best kernel this CPU runs.
pub(super) fn best() -> Kernel {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512dq")
            && std::is_x86_feature_detected!("avx512cd")
        {
            return Kernel::Avx512;
        }
        if std::is_x86_feature_detected!("avx2") {
            return Kernel::Avx2;
        }
    }
    Kernel::Portable
}

/// AVX-512: a block's values of one feature stay in registers, each split
/// is one comparison of all its rows and one masked AND per eight rows'
/// leaf-set words.
#[cfg(target_arch = "x86_64")]
pub(super) mod avx512 {
    use std::arch::x86_64::*;

    use super::super::quick::{Feature, Lanes, Sum, Word, BLOCK};

    /// A block's values in registers, by value type.
    pub(crate) trait Wide: Copy {
        type Reg: Copy;
        /// # Safety
        /// The CPU has AVX-512F and DQ.
        unsafe fn load(v: &[Self; BLOCK]) -> Self::Reg;
        /// Rows whose value is above `t` (never NaN), a bit per row.
        unsafe fn above(r: Self::Reg, t: Self) -> u16;
        unsafe fn nan(r: Self::Reg) -> u16;
        /// The values as two halves of float64.
        unsafe fn wide(v: &[Self; BLOCK]) -> [__m512d; 2];
    }

    impl Wide for f64 {
        type Reg = [__m512d; 2];
        #[inline]
        #[target_feature(enable = "avx512f,avx512dq")]
        unsafe fn load(v: &[f64; BLOCK]) -> [__m512d; 2] {
            [_mm512_loadu_pd(v.as_ptr()), _mm512_loadu_pd(v.as_ptr().add(8))]
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512dq")]
        unsafe fn above(r: [__m512d; 2], t: f64) -> u16 {
            let t = _mm512_set1_pd(t);
            u16::from(_mm512_cmp_pd_mask::<_CMP_GT_OQ>(r[0], t))
                | u16::from(_mm512_cmp_pd_mask::<_CMP_GT_OQ>(r[1], t)) << 8
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512dq")]
        unsafe fn nan(r: [__m512d; 2]) -> u16 {
            u16::from(_mm512_cmp_pd_mask::<_CMP_UNORD_Q>(r[0], r[0]))
                | u16::from(_mm512_cmp_pd_mask::<_CMP_UNORD_Q>(r[1], r[1])) << 8
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512dq")]
        unsafe fn wide(v: &[f64; BLOCK]) -> [__m512d; 2] {
            Self::load(v)
        }
    }

    impl Wide for f32 {
        type Reg = __m512;
        #[inline]
        #[target_feature(enable = "avx512f,avx512dq")]
        unsafe fn load(v: &[f32; BLOCK]) -> __m512 {
            _mm512_loadu_ps(v.as_ptr())
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512dq")]
        unsafe fn above(r: __m512, t: f32) -> u16 {
            _mm512_cmp_ps_mask::<_CMP_GT_OQ>(r, _mm512_set1_ps(t))
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512dq")]
        unsafe fn nan(r: __m512) -> u16 {
            _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(r, r)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512dq")]
        unsafe fn wide(v: &[f32; BLOCK]) -> [__m512d; 2] {
            [_mm512_cvtps_pd(_mm256_loadu_ps(v.as_ptr())), _mm512_cvtps_pd(_mm256_loadu_ps(v.as_ptr().add(8)))]
        }
    }

    /// A leaf-set word's masked AND over a block.
    pub(crate) trait Clear: Sized {
        /// Clears `mask`'s leaves from the words of the rows in `rows`.
        ///
        /// # Safety
        /// The CPU has AVX-512F.
        unsafe fn clear(set: &mut [Self; BLOCK], rows: u16, mask: u64);
    }

    impl Clear for u64 {
        #[inline]
        #[target_feature(enable = "avx512f,avx512dq")]
        unsafe fn clear(set: &mut Lanes<u64>, rows: u16, mask: u64) {
            let m = _mm512_set1_epi64(mask as i64);
            let p = set.as_mut_ptr().cast::<i64>();
            let (lo, hi) = (_mm512_loadu_epi64(p), _mm512_loadu_epi64(p.add(8)));
            _mm512_storeu_epi64(p, _mm512_mask_and_epi64(lo, rows as u8, lo, m));
            _mm512_storeu_epi64(p.add(8), _mm512_mask_and_epi64(hi, (rows >> 8) as u8, hi, m));
        }
    }

    impl Clear for u32 {
        #[inline]
        #[target_feature(enable = "avx512f,avx512dq")]
        unsafe fn clear(set: &mut Lanes<u32>, rows: u16, mask: u64) {
            let m = _mm512_set1_epi32(mask as u32 as i32);
            let p = set.as_mut_ptr().cast::<i32>();
            let all = _mm512_loadu_epi32(p);
            _mm512_storeu_epi32(p, _mm512_mask_and_epi32(all, rows, all, m));
        }
    }

    /// A raw score type's sixteen lanes.
    pub(crate) trait Gather: Sized {
        /// `acc[l] += table[leaf[l]]`, each lane one IEEE addition.
        ///
        /// # Safety
        /// The CPU has AVX-512F and DQ; every `leaf` is below 64.
        unsafe fn add16(acc: &mut [Self; BLOCK], leaf: __m512i, table: &[Self; 64]);
    }

    impl Gather for f32 {
        #[inline]
        #[target_feature(enable = "avx512f,avx512dq")]
        unsafe fn add16(acc: &mut [f32; BLOCK], leaf: __m512i, table: &[f32; 64]) {
            let v = _mm512_i32gather_ps::<4>(leaf, table.as_ptr());
            _mm512_storeu_ps(acc.as_mut_ptr(), _mm512_add_ps(_mm512_loadu_ps(acc.as_ptr()), v));
        }
    }

    impl Gather for f64 {
        #[inline]
        #[target_feature(enable = "avx512f,avx512dq")]
        unsafe fn add16(acc: &mut [f64; BLOCK], leaf: __m512i, table: &[f64; 64]) {
            let lo = _mm512_i32gather_pd::<8>(_mm512_castsi512_si256(leaf), table.as_ptr());
            let hi = _mm512_i32gather_pd::<8>(_mm512_extracti64x4_epi64::<1>(leaf), table.as_ptr());
            let p = acc.as_mut_ptr();
            _mm512_storeu_pd(p, _mm512_add_pd(_mm512_loadu_pd(p), lo));
            _mm512_storeu_pd(p.add(8), _mm512_add_pd(_mm512_loadu_pd(p.add(8)), hi));
        }
    }

    /// The lowest set bit's index in each lane (lanes not zero).
    #[inline]
    #[target_feature(enable = "avx512f,avx512cd")]
    unsafe fn lowest(x: __m512i) -> __m512i {
        let bit = _mm512_and_si512(x, _mm512_sub_epi32(_mm512_setzero_si512(), x));
        _mm512_sub_epi32(_mm512_set1_epi32(31), _mm512_lzcnt_epi32(bit))
    }

    /// `quick::add`, the same additions in the same order.
    ///
    /// # Safety
    /// The CPU has AVX-512F, DQ and CD; `raw` holds at most `BLOCK` rows,
    /// `tables` come from the scorer that cut `words`.
    #[target_feature(enable = "avx512f,avx512dq,avx512cd")]
    pub(in super::super) unsafe fn add<F: Sum>(words: &[u32], sets: &[Lanes<u32>], tables: &[[F; 64]], raw: &mut [F]) {
        let mut acc = [F::default(); BLOCK];
        acc[..raw.len()].copy_from_slice(raw);
        for (span, table) in words.windows(2).zip(tables) {
            let at = span[0] as usize;
            let first = _mm512_loadu_epi32(sets[at].as_ptr().cast());
            let mut leaf = lowest(first);
            if span[1] as usize - at == 2 {
                // Where the first word is empty, the leaf is in the second.
                let second = _mm512_loadu_epi32(sets[at + 1].as_ptr().cast());
                let empty = _mm512_testn_epi32_mask(first, first);
                leaf = _mm512_mask_add_epi32(leaf, empty, lowest(second), _mm512_set1_epi32(32));
            }
            F::add16(&mut acc, leaf, table);
        }
        let n = raw.len();
        raw.copy_from_slice(&acc[..n]);
    }

    /// `quick::scan`, the same rules.
    ///
    /// # Safety
    /// The CPU has AVX-512F and DQ (`best`).
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(in super::super) unsafe fn scan<T: super::super::walk::Value, B: Word>(
        feature: &Feature<T>,
        v: &[T; BLOCK],
        sets: &mut [Lanes<B>],
    ) {
        let r = T::load(v);
        for e in &feature.numeric {
            let failed = T::above(r, e.threshold);
            // Thresholds ascend: no row fails this one or any after it.
            if failed == 0 {
                break;
            }
            B::clear(&mut sets[e.word as usize], failed, e.mask);
        }
        let nan = T::nan(r);
        if nan != 0 {
            for &(word, mask) in &feature.nan_right {
                B::clear(&mut sets[word as usize], nan, mask);
            }
        }
        if feature.inline.is_empty() {
            return;
        }
        // The walker's rule: codes truncate toward zero; NaN and values
        // outside (-1, 64) go right.
        let halves = T::wide(v);
        let (mut inside, mut codes) = ([0u8; 2], [_mm512_setzero_si512(); 2]);
        for h in 0..2 {
            let x = halves[h];
            inside[h] = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(x, _mm512_set1_pd(-1.0))
                & _mm512_cmp_pd_mask::<_CMP_LT_OQ>(x, _mm512_set1_pd(64.0));
            codes[h] = _mm512_and_si512(_mm512_cvttpd_epi64(x), _mm512_set1_epi64(63));
        }
        for c in &feature.inline {
            let bits = _mm512_set1_epi64(c.bits as i64);
            let one = _mm512_set1_epi64(1);
            let listed = |h: usize| inside[h] & _mm512_test_epi64_mask(_mm512_srlv_epi64(bits, codes[h]), one);
            let left = u16::from(listed(0)) | u16::from(listed(1)) << 8;
            B::clear(&mut sets[c.word as usize], !left, c.mask);
        }
    }
}

/// AVX2: the block's values as float64 (float32 converts exactly, so
/// every comparison keeps its result) in four registers; a split's AND is
/// a blend per four rows. LightGBM's inline categorical splits take the
/// portable rule (AVX2 has no float-to-int64 conversion).
#[cfg(target_arch = "x86_64")]
pub(super) mod avx2 {
    use std::arch::x86_64::*;

    use super::super::quick::{Feature, Lanes, BLOCK};
    use super::super::walk::Value;

    /// Clears `mask`'s leaves from the words of the rows whose lanes of
    /// `rows` are all ones.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn clear(set: &mut Lanes, rows: [__m256d; 4], mask: u64) {
        let m = _mm256_set1_epi64x(mask as i64);
        let ones = _mm256_set1_epi64x(-1);
        for (q, rows) in rows.iter().enumerate() {
            let p = set.as_mut_ptr().add(4 * q).cast::<__m256i>();
            let keep = _mm256_or_si256(m, _mm256_xor_si256(_mm256_castpd_si256(*rows), ones));
            _mm256_storeu_si256(p, _mm256_and_si256(_mm256_loadu_si256(p), keep));
        }
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn any(rows: [__m256d; 4]) -> bool {
        _mm256_movemask_pd(_mm256_or_pd(_mm256_or_pd(rows[0], rows[1]), _mm256_or_pd(rows[2], rows[3]))) != 0
    }

    /// `quick::scan`, the same rules.
    ///
    /// # Safety
    /// The CPU has AVX2.
    #[target_feature(enable = "avx2")]
    pub(in super::super) unsafe fn scan<T: Value>(feature: &Feature<T>, v: &[T; BLOCK], sets: &mut [Lanes]) {
        let mut wide = [0f64; BLOCK];
        for (w, x) in wide.iter_mut().zip(v) {
            *w = x.to_f64();
        }
        let r: [__m256d; 4] = std::array::from_fn(|q| _mm256_loadu_pd(wide.as_ptr().add(4 * q)));
        for e in &feature.numeric {
            let t = _mm256_set1_pd(e.threshold.to_f64());
            let failed = r.map(|r| _mm256_cmp_pd::<_CMP_GT_OQ>(r, t));
            // Thresholds ascend: no row fails this one or any after it.
            if !any(failed) {
                break;
            }
            clear(&mut sets[e.word as usize], failed, e.mask);
        }
        let nan = r.map(|r| _mm256_cmp_pd::<_CMP_UNORD_Q>(r, r));
        if any(nan) {
            for &(word, mask) in &feature.nan_right {
                clear(&mut sets[word as usize], nan, mask);
            }
        }
        for c in &feature.inline {
            for (s, &x) in sets[c.word as usize].iter_mut().zip(&wide) {
                let listed = (c.bits >> ((x as i64 & 63) as u32)) & 1 != 0;
                *s &= c.mask | u64::from((x > -1.0) & (x < 64.0) & listed).wrapping_neg();
            }
        }
    }
}
