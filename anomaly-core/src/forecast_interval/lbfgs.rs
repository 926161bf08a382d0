//! Limited-memory BFGS with a strong-Wolfe line search (Nocedal & Wright,
//! algorithms 7.4, 3.5 and 3.6), in plain Rust.
//!
//! It minimises further than Stan's defaults stop (Stan's relative
//! objective tolerance is about 2e-12), so the objective at our optimum is
//! at most Prophet's; forecasts then agree within the flatness of the
//! optimum.

/// Settings of the optimiser: Stan's L-BFGS convergence tests, with
/// tolerances ten times tighter than CmdStan's defaults so that our
/// optimum is at least as good as Prophet's.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) history: usize,
    pub(crate) max_iterations: usize,
    /// Absolute change of the objective (Stan `tol_obj` 1e-12).
    pub(crate) tol_obj: f64,
    /// Relative change of the objective (Stan `tol_rel_obj` 1e4 * eps).
    pub(crate) tol_rel_obj: f64,
    /// Gradient norm (Stan `tol_grad` 1e-8).
    pub(crate) tol_grad: f64,
    /// Step length (Stan `tol_param` 1e-8).
    pub(crate) tol_param: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            history: 10,
            max_iterations: 10_000,
            tol_obj: 1e-13,
            tol_rel_obj: 1e3 * f64::EPSILON,
            tol_grad: 1e-9,
            tol_param: 1e-9,
        }
    }
}

/// Outcome of a minimisation.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) x: Vec<f64>,
    pub(crate) value: f64,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Minimises `f`, which writes the gradient into its second argument and
/// returns the value.
pub(crate) fn minimize(mut f: impl FnMut(&[f64], &mut [f64]) -> f64, x0: Vec<f64>, settings: Settings) -> Outcome {
    let n = x0.len();
    let mut x = x0;
    let mut g = vec![0.0; n];
    let mut value = f(&x, &mut g);
    let mut s_hist: Vec<Vec<f64>> = Vec::new();
    let mut y_hist: Vec<Vec<f64>> = Vec::new();
    let mut rho: Vec<f64> = Vec::new();
    let mut direction = vec![0.0; n];
    let mut alpha_buf = vec![0.0; settings.history];
    let (mut x_new, mut g_new) = (vec![0.0; n], vec![0.0; n]);
    let mut iterations = 0;
    while iterations < settings.max_iterations {
        iterations += 1;
        if dot(&g, &g).sqrt() < settings.tol_grad {
            break;
        }
        // Two-loop recursion: direction = -H g.
        direction.copy_from_slice(&g);
        for i in (0..s_hist.len()).rev() {
            alpha_buf[i] = rho[i] * dot(&s_hist[i], &direction);
            for (d, y) in direction.iter_mut().zip(&y_hist[i]) {
                *d -= alpha_buf[i] * y;
            }
        }
        let gamma = match (s_hist.last(), y_hist.last()) {
            (Some(s), Some(y)) => dot(s, y) / dot(y, y),
            _ => 1.0 / g.iter().map(|v| v.abs()).fold(1.0, f64::max),
        };
        direction.iter_mut().for_each(|d| *d *= gamma);
        for i in 0..s_hist.len() {
            let beta = rho[i] * dot(&y_hist[i], &direction);
            for (d, s) in direction.iter_mut().zip(&s_hist[i]) {
                *d += s * (alpha_buf[i] - beta);
            }
        }
        direction.iter_mut().for_each(|d| *d = -*d);
        let mut slope = dot(&g, &direction);

        if slope >= 0.0 {
            // Not a descent direction (curvature lost at a kink): restart.
            s_hist.clear();
            y_hist.clear();
            rho.clear();
            for (d, gi) in direction.iter_mut().zip(&g) {
                *d = -gi;
            }
            slope = dot(&g, &direction);
            if slope >= 0.0 {
                break;
            }
        }
        let Some((step, new_value)) = line_search(&mut f, &x, value, &direction, slope, &mut x_new, &mut g_new) else {
            if s_hist.is_empty() {
                break;
            }
            s_hist.clear();
            y_hist.clear();
            rho.clear();
            continue;
        };
        let s: Vec<f64> = direction.iter().map(|d| d * step).collect();
        let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        let change = (value - new_value).abs();
        let rel_change = change / value.abs().max(new_value.abs()).max(1.0);
        let step_norm = dot(&s, &s).sqrt();
        x.copy_from_slice(&x_new);
        g.copy_from_slice(&g_new);
        value = new_value;
        if sy > 1e-300 {
            if s_hist.len() == settings.history {
                s_hist.remove(0);
                y_hist.remove(0);
                rho.remove(0);
            }
            rho.push(1.0 / sy);
            s_hist.push(s);
            y_hist.push(y);
        }
        if change < settings.tol_obj || rel_change < settings.tol_rel_obj || step_norm < settings.tol_param {
            break;
        }
    }
    Outcome { x, value }
}

/// Strong-Wolfe line search (Nocedal & Wright 3.5 and 3.6); returns the
/// step and the new value, with the new point and gradient in `x_new` and
/// `g_new`. At a kink the curvature condition may never hold: then the
/// best step with sufficient decrease is taken.
fn line_search(
    f: &mut impl FnMut(&[f64], &mut [f64]) -> f64,
    x: &[f64],
    value: f64,
    direction: &[f64],
    slope: f64,
    x_new: &mut [f64],
    g_new: &mut [f64],
) -> Option<(f64, f64)> {
    const C1: f64 = 1e-4;
    const C2: f64 = 0.9;
    let mut eval = |alpha: f64, x_new: &mut [f64], g_new: &mut [f64]| {
        for ((xn, xi), d) in x_new.iter_mut().zip(x).zip(direction) {
            *xn = xi + alpha * d;
        }
        let v = f(x_new, g_new);
        (v, dot(g_new, direction))
    };
    let sufficient = |alpha: f64, v: f64| v.is_finite() && v <= value + C1 * alpha * slope;
    let (mut prev, mut prev_value, mut prev_slope) = (0.0, value, slope);
    let mut alpha = 1.0;
    let (mut lo, mut hi);
    let mut bracket = None;
    for i in 0..40 {
        let (v, d) = eval(alpha, x_new, g_new);
        if !sufficient(alpha, v) || (i > 0 && v >= prev_value) {
            bracket = Some(((prev, prev_value, prev_slope), (alpha, v, d)));
            break;
        }
        if d.abs() <= -C2 * slope {
            return Some((alpha, v));
        }
        if d >= 0.0 {
            bracket = Some(((alpha, v, d), (prev, prev_value, prev_slope)));
            break;
        }
        (prev, prev_value, prev_slope) = (alpha, v, d);
        alpha *= 2.0;
    }
    let ((l, lv, ld), (h, hv, hd)) = bracket?;
    (lo, hi) = ((l, lv, ld), (h, hv, hd));
    for _ in 0..60 {
        let (a, b) = if lo.0 < hi.0 { (lo.0, hi.0) } else { (hi.0, lo.0) };
        let width = b - a;
        if width <= 1e-15 * b.abs().max(1e-300) {
            break;
        }
        let cubic = cubic_min(lo.0, lo.1, lo.2, hi.0, hi.1, hi.2);
        let trial =
            if cubic.is_finite() && cubic > a + 0.1 * width && cubic < b - 0.1 * width { cubic } else { 0.5 * (a + b) };
        let (v, d) = eval(trial, x_new, g_new);
        if !sufficient(trial, v) || v >= lo.1 {
            hi = (trial, v, d);
        } else {
            if d.abs() <= -C2 * slope {
                return Some((trial, v));
            }
            if d * (hi.0 - lo.0) >= 0.0 {
                hi = lo;
            }
            lo = (trial, v, d);
        }
    }
    if lo.0 > 0.0 {
        let (v, _) = eval(lo.0, x_new, g_new);
        return Some((lo.0, v));
    }
    None
}

fn cubic_min(a: f64, fa: f64, da: f64, b: f64, fb: f64, db: f64) -> f64 {
    if !fb.is_finite() {
        return f64::NAN;
    }
    let d1 = da + db - 3.0 * (fa - fb) / (a - b);
    let disc = d1 * d1 - da * db;
    if disc < 0.0 {
        return f64::NAN;
    }
    let d2 = disc.sqrt().copysign(b - a);
    b - (b - a) * (db + d2 - d1) / (db - da + 2.0 * d2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimizes_the_rosenbrock_function() {
        let rosen = |x: &[f64], g: &mut [f64]| {
            let (a, b) = (x[0], x[1]);
            g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
            g[1] = 200.0 * (b - a * a);
            (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
        };
        let out = minimize(rosen, vec![-1.2, 1.0], Settings::default());
        assert!((out.x[0] - 1.0).abs() < 1e-6 && (out.x[1] - 1.0).abs() < 1e-6, "{out:?}");
    }
}
