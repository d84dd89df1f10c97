//! HSV (hexcone): V = 100 max, S = 100 (max - min) / max (0 for black), H in degrees [0, 360), 0 for
//! grays. The hue is chroma channel 0 and is circular. Exact in f32 (comparisons and one division).

use super::ColorModel;

/// HSV, with the hue in degrees.
#[derive(Debug)]
pub struct Hsv;

impl ColorModel for Hsv {
    fn luma_max(&self) -> f32 {
        100.0
    }

    /// Hue (0, 360) (circular), saturation (0, 100).
    fn chroma_bounds(&self) -> [(f32, f32); 2] {
        [(0.0, 360.0), (0.0, 100.0)]
    }

    fn hue_channel(&self) -> Option<usize> {
        Some(0)
    }

    fn encode(&self, rgb: [f32; 3]) -> [f32; 3] {
        hsv_from_rgb(rgb)
    }

    fn decode(&self, p: [f32; 3]) -> [f32; 3] {
        let [l, c1, c2] = p.map(f64::from);
        // Branch-free hexcone: channel n is V - V S clamp(min(k, 4 - k), 0, 1), k = (n + H/60) mod 6.
        let h = (c1 / 60.0).rem_euclid(6.0);
        let (v, s) = (l / 100.0, c2 / 100.0);
        let channel = |n: f64| {
            let k = (n + h).rem_euclid(6.0);
            v - v * s * k.min(4.0 - k).clamp(0.0, 1.0)
        };
        [channel(5.0), channel(3.0), channel(1.0)].map(|x| x as f32)
    }

    fn encode_block(&self, [r, g, b]: [&[u8]; 3], luma: &mut [f32], c1: &mut [f32], c2: &mut [f32]) {
        let n = luma.len();
        let (r, g, b, c1, c2) = (&r[..n], &g[..n], &b[..n], &mut c1[..n], &mut c2[..n]);
        for i in 0..n {
            let rgb = [r[i], g[i], b[i]].map(|v| f32::from(v) / 255.0);
            let [v, h, s] = hsv_from_rgb(rgb);
            luma[i] = v * (1.0 / 100.0);
            c1[i] = h;
            c2[i] = s;
        }
    }
}

/// RGB -> (V, H, S), shared by both paths. Written with selects rather than early returns so that it vectorises;
/// the unselected hue candidates may be NaN (0 / 0 for grays), which a select discards.
#[inline(always)]
fn hsv_from_rgb([r, g, b]: [f32; 3]) -> [f32; 3] {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let d = max - min;
    let inv_d = 1.0 / d;
    let sector = if max == r {
        (g - b) * inv_d
    } else if max == g {
        (b - r) * inv_d + 2.0
    } else {
        (r - g) * inv_d + 4.0
    };
    let sector = if sector < 0.0 { sector + 6.0 } else { sector };
    let hue = if d > 0.0 { 60.0 * sector } else { 0.0 };
    // A tiny negative sector plus 6 can round to exactly 6: keep the hue in [0, 360).
    let hue = if hue >= 360.0 { hue - 360.0 } else { hue };
    let sat = if max > 0.0 { 100.0 * d / max } else { 0.0 };
    [100.0 * max, hue, sat]
}

#[cfg(test)]
mod tests {
    use crate::color::ColorSpace;
    use crate::color::tests::assert_close;

    #[test]
    fn hsv_of_named_colours() {
        let hsv = |rgb| ColorSpace::Hsv.from_srgb(rgb);
        assert_close(hsv([1.0, 0.0, 0.0]), [100.0, 0.0, 100.0], 1e-4, "red");
        assert_close(hsv([1.0, 1.0, 0.0]), [100.0, 60.0, 100.0], 1e-4, "yellow");
        assert_close(hsv([0.0, 1.0, 0.0]), [100.0, 120.0, 100.0], 1e-4, "green");
        assert_close(hsv([0.0, 1.0, 1.0]), [100.0, 180.0, 100.0], 1e-4, "cyan");
        assert_close(hsv([0.0, 0.0, 1.0]), [100.0, 240.0, 100.0], 1e-4, "blue");
        assert_close(hsv([1.0, 0.0, 1.0]), [100.0, 300.0, 100.0], 1e-4, "magenta");
        // (0.5, 0.25, 0.5): max 0.5, min 0.25, S = 50, hue sector of R: (g - b) / d = -1 -> 300.
        assert_close(hsv([0.5, 0.25, 0.5]), [50.0, 300.0, 50.0], 1e-4, "dark magenta");
        assert_close(hsv([0.5, 0.5, 0.5]), [50.0, 0.0, 0.0], 1e-6, "gray");
        assert_close(hsv([0.0, 0.0, 0.0]), [0.0, 0.0, 0.0], 0.0, "black");
    }
}
