//! The walk's kernel: three walks of sixteen lanes, each taking jobs (a
//! row, or a tree) from its own queue.

use std::arch::x86_64::*;

use super::{Gathered, Top, FEATURE, FEATURE_SHIFT, INLINE, LEFT_LEAF, NAN_LEFT, RIGHT, RIGHT_LEAF, TOP_LEAF};
use super::{TOP_LEVELS, TOP_SLOTS};

const WALKS: usize = 3;
const LANES: usize = 16;

/// Each walk's jobs, then `LANES` of -1 for lanes left without one: the
/// slot a job's leaf goes to, its row's offset in `x` and its root
/// (unless the walk has one root for all); and where walks write each
/// finished job's slot and leaf, span for span.
pub(super) struct Queue {
    slots: Vec<i32>,
    offsets: Vec<i32>,
    roots: Vec<i32>,
    done_slots: Vec<i32>,
    done_leaves: Vec<i32>,
    /// Each walk's span: first queue index, number of jobs.
    spans: [(usize, usize); WALKS],
    /// Groups of rows `descend` has added (they go to the walks in turn).
    groups: usize,
}

impl Queue {
    /// `n` jobs, `job(j)` = (slot, offset, root); slots index the
    /// walk's `found`, offsets are rows' starts within `x`.
    pub(super) fn new(n: usize, job: impl Fn(usize) -> (i32, i32, i32)) -> Queue {
        let len = n + LANES * WALKS;
        let mut q = Queue {
            slots: vec![-1; len],
            offsets: vec![-1; len],
            roots: vec![-1; len],
            done_slots: vec![0; len],
            done_leaves: vec![0; len],
            spans: [(0, 0); WALKS],
            groups: 0,
        };
        for k in 0..WALKS {
            let (lo, hi) = (k * n / WALKS, (k + 1) * n / WALKS);
            let base = lo + LANES * k;
            q.spans[k] = (base, hi - lo);
            for (i, j) in (lo..hi).enumerate() {
                (q.slots[base + i], q.offsets[base + i], q.roots[base + i]) = job(j);
            }
        }
        q
    }

    /// Whether a `regions` queue has room for `groups` groups.
    pub(super) fn holds(&self, groups: usize) -> bool {
        self.spans[1].0 >= groups.div_ceil(WALKS) * LANES + LANES
    }

    /// An empty queue for `descend` to fill with up to `groups` groups of
    /// sixteen jobs: each walk a region, with room for a group past its
    /// jobs (a whole store) and for the sentinels.
    pub(super) fn regions(groups: usize) -> Queue {
        let cap = groups.div_ceil(WALKS) * LANES + LANES;
        let len = cap * WALKS;
        Queue {
            slots: vec![-1; len],
            offsets: vec![-1; len],
            roots: vec![-1; len],
            done_slots: vec![0; len],
            done_leaves: vec![0; len],
            spans: std::array::from_fn(|k| (k * cap, 0)),
            groups: 0,
        }
    }

    /// No jobs (a `regions` queue, for `descend` to fill).
    pub(super) fn clear(&mut self) {
        self.spans.iter_mut().for_each(|s| s.1 = 0);
        self.groups = 0;
    }

    /// Sentinels after each walk's jobs: lanes past them have none.
    pub(super) fn seal(&mut self) {
        for &(start, n) in &self.spans {
            self.slots[start + n..start + n + LANES].fill(-1);
        }
    }
}

/// Every row of `x` (`rows` of `width` float32 values) down `top`'s
/// levels, sixteen at a time: a row `r` at a leaf has it in
/// `found[slots + r]`, the others are added to `q`'s jobs (`regions`,
/// `clear`ed before and `seal`ed after), starting where they are.
///
/// # Safety
/// The CPU has AVX-512F; `q` has room for the rows (`regions`); `x` holds
/// `rows` rows, at least as wide as `top`'s features, their offsets within
/// 32 bits; `found` holds `slots + rows` slots, within 32 bits.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn descend(
    top: &Top,
    x: *const u8,
    (width, rows): (usize, usize),
    q: &mut Queue,
    (found, slots): (&mut [u32], usize),
) {
    let set = |v: u32| _mm512_set1_epi32(v as i32);
    let features = table(&top.features);
    let thresholds = table(&top.thresholds.map(f32::to_bits));
    let outcomes = table(&top.outcomes);
    let lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    let base = (1u32 << TOP_LEVELS) - 1;
    let groups = rows.div_ceil(LANES);
    // Four groups at a time: their gathers overlap.
    for g0 in (0..groups).step_by(4) {
        let live = live(rows, g0);
        let rows: [__m512i; 4] = std::array::from_fn(|k| _mm512_add_epi32(set(((g0 + k) * LANES) as u32), lane));
        let offsets: [__m512i; 4] = std::array::from_fn(|k| _mm512_mullo_epi32(rows[k], set(width as u32)));
        let slots: [__m512i; 4] = std::array::from_fn(|k| _mm512_add_epi32(rows[k], set(slots as u32)));
        let mut at = [_mm512_setzero_si512(); 4];
        for level in 0..TOP_LEVELS {
            // Slots below 31 until the last level.
            let wide = level + 1 == TOP_LEVELS;
            for k in 0..4 {
                let feature = pick(&features, at[k], wide);
                let threshold = _mm512_castsi512_ps(pick(&thresholds, at[k], wide));
                let i = _mm512_add_epi32(offsets[k], _mm512_and_si512(feature, set(FEATURE)));
                let v = _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), live[k], i, x.cast());
                let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v) & _mm512_test_epi32_mask(feature, set(NAN_LEFT));
                let left = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(v, threshold) | nan;
                // Right child 2s + 2, left 2s + 1.
                let next = _mm512_add_epi32(_mm512_slli_epi32::<1>(at[k]), set(2));
                at[k] = _mm512_mask_sub_epi32(next, left, next, set(1));
            }
        }
        for k in 0..4 {
            let outcome = pick(&outcomes, _mm512_sub_epi32(at[k], set(base)), true);
            let leaf = live[k] & _mm512_test_epi32_mask(outcome, set(TOP_LEAF));
            let node = _mm512_andnot_si512(set(TOP_LEAF), outcome);
            _mm512_mask_i32scatter_epi32::<4>(found.as_mut_ptr().cast(), leaf, slots[k], node);
            let go = live[k] & !leaf;
            let (start, n) = &mut q.spans[q.groups % WALKS];
            q.groups += 1;
            let end = *start + *n;
            _mm512_storeu_si512(q.slots.as_mut_ptr().add(end).cast(), _mm512_maskz_compress_epi32(go, slots[k]));
            _mm512_storeu_si512(q.offsets.as_mut_ptr().add(end).cast(), _mm512_maskz_compress_epi32(go, offsets[k]));
            _mm512_storeu_si512(q.roots.as_mut_ptr().add(end).cast(), _mm512_maskz_compress_epi32(go, outcome));
            *n += go.count_ones() as usize;
        }
    }
}

/// Levels of a whole top whose values are loaded, not gathered: a
/// level's few features are each sixteen rows of a column (column-major
/// rows), one load apiece, the lane's own picked by a blend.
const LOADED_LEVELS: usize = 3;

/// Adds, for each of `sums.len()` rows from `r0` of column-major `x`
/// (column `f` at `x + f * stride`), the value of its outcome in `top`, a
/// whole tree: `offsets[s]` is slot `s`'s column offset (`feature *
/// stride`, below `NAN_LEFT`) with `NAN_LEFT` set where NaN goes left.
///
/// # Safety
/// The CPU has AVX-512F; `top` is whole; every offset plus `r0 +
/// sums.len()` is within `x` and below `NAN_LEFT`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn add_columns(
    top: &Top,
    (offsets, values): (&[u32; TOP_SLOTS], &[f32; TOP_SLOTS]),
    x: *const f32,
    r0: usize,
    sums: &mut [f32],
) {
    let set = |v: u32| _mm512_set1_epi32(v as i32);
    let (offs, thresholds, vals) =
        (table(offsets), table(&top.thresholds.map(f32::to_bits)), table(&values.map(f32::to_bits)));
    let lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    let low = set(!NAN_LEFT);
    let rows = sums.len();
    let groups = rows.div_ceil(LANES);
    for g0 in (0..groups).step_by(4) {
        let live = live(rows, g0);
        let first: [usize; 4] = std::array::from_fn(|k| r0 + (g0 + k) * LANES);
        let mut at = [_mm512_setzero_si512(); 4];
        for level in 0..TOP_LEVELS {
            for k in 0..4 {
                if live[k] == 0 {
                    continue;
                }
                let wide = level + 1 == TOP_LEVELS;
                let off = pick(&offs, at[k], wide);
                let threshold = _mm512_castsi512_ps(pick(&thresholds, at[k], wide));
                let v = if level < LOADED_LEVELS {
                    // The level's slots: each one's sixteen rows loaded.
                    let base = (1usize << level) - 1;
                    let row = |s: usize| {
                        let column = (offsets[s] & !NAN_LEFT) as usize;
                        _mm512_maskz_loadu_ps(live[k], x.add(column + first[k]))
                    };
                    let mut v = row(base);
                    for s in base + 1..2 * base + 1 {
                        v = _mm512_mask_blend_ps(_mm512_cmpeq_epi32_mask(at[k], set(s as u32)), v, row(s));
                    }
                    v
                } else {
                    let i = _mm512_add_epi32(_mm512_and_si512(off, low), _mm512_add_epi32(set(first[k] as u32), lane));
                    _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), live[k], i, x.cast())
                };
                let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v) & _mm512_test_epi32_mask(off, set(NAN_LEFT));
                let left = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(v, threshold) | nan;
                // Right child 2s + 2, left 2s + 1.
                let next = _mm512_add_epi32(_mm512_slli_epi32::<1>(at[k]), set(2));
                at[k] = _mm512_mask_sub_epi32(next, left, next, set(1));
            }
        }
        for k in 0..4 {
            if live[k] == 0 {
                continue;
            }
            let outcome = _mm512_sub_epi32(at[k], set(TOP_SLOTS as u32 - 1));
            let v = _mm512_castsi512_ps(pick(&vals, outcome, true));
            let p = sums.as_mut_ptr().add((g0 + k) * LANES);
            _mm512_mask_storeu_ps(p, live[k], _mm512_add_ps(_mm512_maskz_loadu_ps(live[k], p), v));
        }
    }
}

/// A top's table (`TOP_SLOTS` entries) in four registers.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn table(t: &[u32; TOP_SLOTS]) -> [__m512i; 4] {
    std::array::from_fn(|i| _mm512_loadu_si512(t.as_ptr().add(16 * i).cast()))
}

/// A table's entry at each lane's index; `wide` where an index may be 32
/// or more (the top's last level and its outcomes), which takes the other
/// two registers and a blend.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn pick(t: &[__m512i; 4], at: __m512i, wide: bool) -> __m512i {
    let lo = _mm512_permutex2var_epi32(t[0], at, t[1]);
    if !wide {
        return lo;
    }
    let hi = _mm512_permutex2var_epi32(t[2], at, t[3]);
    _mm512_mask_blend_epi32(_mm512_test_epi32_mask(at, _mm512_set1_epi32(32)), lo, hi)
}

/// The live lanes of four groups of sixteen from group `g0`, of `rows` rows.
fn live(rows: usize, g0: usize) -> [u16; 4] {
    std::array::from_fn(|k| match rows.saturating_sub((g0 + k) * LANES) {
        n if n >= LANES => u16::MAX,
        n => (1u16 << n) - 1,
    })
}

/// One walk's lanes: job slot, its row's offset, node (a split);
/// `live` lanes have a job.
#[derive(Clone, Copy)]
struct Walk {
    slots: __m512i,
    offsets: __m512i,
    node: __m512i,
    live: __mmask16,
    /// Next queue index, the span's end, next output index.
    next: usize,
    end: usize,
    out: usize,
}

/// What a step reads and writes.
#[derive(Clone, Copy)]
struct Memory {
    nodes: *const i64,
    thresholds: *const f64,
    x: *const u8,
    slots: *const i32,
    offsets: *const i32,
    /// The queue's roots, or one root for every job.
    roots: Result<__m512i, *const i32>,
    done_slots: *mut i32,
    done_leaves: *mut i32,
}

#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn start(q: &Queue, m: &Memory, k: usize) -> Walk {
    let (base, n) = q.spans[k];
    let slots = _mm512_loadu_si512(q.slots.as_ptr().add(base).cast());
    let node = match m.roots {
        Ok(root) => root,
        Err(roots) => _mm512_loadu_si512(roots.add(base).cast()),
    };
    Walk {
        slots,
        offsets: _mm512_loadu_si512(q.offsets.as_ptr().add(base).cast()),
        node,
        live: _mm512_cmpge_epi32_mask(slots, _mm512_setzero_si512()),
        next: base + n.min(LANES),
        end: base + n,
        out: base,
    }
}

/// Every live lane's split: its low half, and which lanes go left.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn split32(w: &Walk, m: &Memory) -> (__m512i, __mmask16) {
    let set = |v: u32| _mm512_set1_epi32(v as i32);
    let zero = _mm512_setzero_si512();
    let lo = _mm512_mask_i32gather_epi64::<8>(zero, w.live as u8, _mm512_castsi512_si256(w.node), m.nodes);
    let hi =
        _mm512_mask_i32gather_epi64::<8>(zero, (w.live >> 8) as u8, _mm512_extracti64x4_epi64::<1>(w.node), m.nodes);
    let even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    let low = _mm512_permutex2var_epi32(lo, even, hi);
    let threshold = _mm512_castsi512_ps(_mm512_permutex2var_epi32(lo, _mm512_add_epi32(even, set(1)), hi));
    let feature = _mm512_and_si512(_mm512_srli_epi32::<FEATURE_SHIFT>(low), set(FEATURE));
    let at = _mm512_add_epi32(w.offsets, feature);
    let v = _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), w.live, at, m.x.cast());
    let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v) & _mm512_test_epi32_mask(low, set(NAN_LEFT));
    (low, (_mm512_cmp_ps_mask::<_CMP_LE_OQ>(v, threshold) | nan) & w.live)
}

/// `split32` for float64 trees: the low halves by a 32-bit gather of
/// the nodes, thresholds and values eight lanes at a time; LightGBM's
/// inline categorical splits send a value left if it lies in (-1, 64)
/// and its code (truncated) is in the bitset.
#[inline]
#[target_feature(enable = "avx512f,avx512dq")]
unsafe fn split64(w: &Walk, m: &Memory) -> (__m512i, __mmask16) {
    let set = |v: u32| _mm512_set1_epi32(v as i32);
    let low = _mm512_mask_i32gather_epi32::<8>(_mm512_setzero_si512(), w.live, w.node, m.nodes.cast());
    let feature = _mm512_and_si512(_mm512_srli_epi32::<FEATURE_SHIFT>(low), set(FEATURE));
    let at = _mm512_add_epi32(w.offsets, feature);
    let (inline, nan_left) = (_mm512_test_epi32_mask(low, set(INLINE)), _mm512_test_epi32_mask(low, set(NAN_LEFT)));
    let mut left = 0u16;
    for h in 0..2 {
        let live = (w.live >> (8 * h)) as u8;
        let (node, at) = if h == 0 {
            (_mm512_castsi512_si256(w.node), _mm512_castsi512_si256(at))
        } else {
            (_mm512_extracti64x4_epi64::<1>(w.node), _mm512_extracti64x4_epi64::<1>(at))
        };
        let t = _mm512_mask_i32gather_pd::<8>(_mm512_setzero_pd(), live, node, m.thresholds);
        let v = _mm512_mask_i32gather_pd::<8>(_mm512_setzero_pd(), live, at, m.x.cast());
        let (inline, nan_left) = ((inline >> (8 * h)) as u8, (nan_left >> (8 * h)) as u8);
        let numeric = _mm512_cmp_pd_mask::<_CMP_LE_OQ>(v, t) | (_mm512_cmp_pd_mask::<_CMP_UNORD_Q>(v, v) & nan_left);
        let inside = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(v, _mm512_set1_pd(-1.0))
            & _mm512_cmp_pd_mask::<_CMP_LT_OQ>(v, _mm512_set1_pd(64.0));
        let code = _mm512_and_si512(_mm512_cvttpd_epi64(v), _mm512_set1_epi64(63));
        let listed = _mm512_test_epi64_mask(_mm512_srlv_epi64(_mm512_castpd_si512(t), code), _mm512_set1_epi64(1));
        let half = (numeric & !inline) | (inside & listed & inline);
        left |= u16::from(half & live) << (8 * h);
    }
    (low, left)
}

/// Every live lane one level down; lanes that reach a leaf write it
/// with their slot and take the next jobs of the queue.
#[inline]
#[target_feature(enable = "avx512f,avx512dq")]
unsafe fn step<const WIDE: bool>(mut w: Walk, m: Memory) -> Walk {
    let set = |v: u32| _mm512_set1_epi32(v as i32);
    let zero = _mm512_setzero_si512();
    let (low, left) = if WIDE { split64(&w, &m) } else { split32(&w, &m) };
    let right = _mm512_add_epi32(w.node, _mm512_and_si512(low, set(RIGHT)));
    let next = _mm512_mask_blend_epi32(left, right, _mm512_add_epi32(w.node, set(1)));
    let leaf = w.live
        & ((left & _mm512_test_epi32_mask(low, set(LEFT_LEAF)))
            | (!left & _mm512_test_epi32_mask(low, set(RIGHT_LEAF))));
    // Compressed in registers, then stored whole: the span has room.
    _mm512_storeu_si512(m.done_slots.add(w.out).cast(), _mm512_maskz_compress_epi32(leaf, w.slots));
    _mm512_storeu_si512(m.done_leaves.add(w.out).cast(), _mm512_maskz_compress_epi32(leaf, next));
    let finished = leaf.count_ones() as usize;
    w.out += finished;
    w.slots = _mm512_mask_expandloadu_epi32(w.slots, leaf, m.slots.add(w.next).cast());
    w.offsets = _mm512_mask_expandloadu_epi32(w.offsets, leaf, m.offsets.add(w.next).cast());
    w.node = match m.roots {
        Ok(root) => _mm512_mask_blend_epi32(leaf, next, root),
        Err(roots) => _mm512_mask_expandloadu_epi32(next, leaf, roots.add(w.next).cast()),
    };
    w.next = (w.next + finished).min(w.end);
    w.live = _mm512_cmpge_epi32_mask(w.slots, zero);
    w
}

/// Each job's leaf (the tree's own node index) in `found[slot]`; jobs
/// start at `root` or, if `None`, at their own.
///
/// # Safety
/// The CPU has AVX-512F and DQ; the jobs' roots are splits of `g`'s
/// trees, their offsets rows of `x` (values of the trees' type, f64 if
/// `WIDE`) at least as wide as `g`'s features, their slots within
/// `found`.
#[target_feature(enable = "avx512f,avx512dq")]
pub(super) unsafe fn walk<const WIDE: bool>(
    g: &Gathered,
    x: *const u8,
    q: &mut Queue,
    root: Option<u32>,
    found: &mut [u32],
) {
    let m = Memory {
        nodes: g.nodes.as_ptr().cast(),
        thresholds: g.thresholds.as_ptr(),
        x,
        slots: q.slots.as_ptr(),
        offsets: q.offsets.as_ptr(),
        roots: root.map(|r| _mm512_set1_epi32(r as i32)).ok_or(q.roots.as_ptr()),
        done_slots: q.done_slots.as_mut_ptr(),
        done_leaves: q.done_leaves.as_mut_ptr(),
    };
    let (mut a, mut b, mut c) = (start(q, &m, 0), start(q, &m, 1), start(q, &m, 2));
    // Three independent walks per iteration hide each one's gathers.
    while a.out < a.end || b.out < b.end || c.out < c.end {
        a = step::<WIDE>(a, m);
        b = step::<WIDE>(b, m);
        c = step::<WIDE>(c, m);
    }
    for &(base, n) in &q.spans {
        for (&s, &leaf) in q.done_slots[base..base + n].iter().zip(&q.done_leaves[base..base + n]) {
            found[s as usize] = g.node.get(leaf as usize).copied().unwrap_or(0);
        }
    }
}
