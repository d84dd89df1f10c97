//! YUV: BT.601 on gamma-encoded sRGB, times 255. Y = 255 (0.299 R + 0.587 G + 0.114 B),
//! U = 255 * 0.492 (B - Y/255), V = 255 * 0.877 (R - Y/255); so |U| <= 255 * 0.492 * 0.886 = 111.158 and
//! |V| <= 255 * 0.877 * 0.701 = 156.768.

use super::ColorModel;

/// BT.601 luma weights and the U, V scale factors.
const YUV_KR: f64 = 0.299;
const YUV_KG: f64 = 0.587;
const YUV_KB: f64 = 0.114;
const YUV_U: f64 = 0.492;
const YUV_V: f64 = 0.877;

/// |U| and |V| are largest at blue/yellow and red/cyan: 255 * 0.492 * (1 - 0.114) and 255 * 0.877 * (1 - 0.299).
const YUV_U_MAX: f32 = (255.0 * YUV_U * (1.0 - YUV_KB)) as f32;
const YUV_V_MAX: f32 = (255.0 * YUV_V * (1.0 - YUV_KR)) as f32;

/// BT.601 YUV.
#[derive(Debug)]
pub struct Yuv;

impl ColorModel for Yuv {
    fn luma_max(&self) -> f32 {
        255.0
    }

    fn chroma_bounds(&self) -> [(f32, f32); 2] {
        [(-YUV_U_MAX, YUV_U_MAX), (-YUV_V_MAX, YUV_V_MAX)]
    }

    fn encode(&self, rgb: [f32; 3]) -> [f32; 3] {
        let [r, g, b] = rgb.map(f64::from);
        let y = YUV_KR * r + YUV_KG * g + YUV_KB * b;
        [255.0 * y, 255.0 * YUV_U * (b - y), 255.0 * YUV_V * (r - y)].map(|x| x as f32)
    }

    fn decode(&self, p: [f32; 3]) -> [f32; 3] {
        let [l, c1, c2] = p.map(f64::from);
        let y = l / 255.0;
        let b = y + c1 / (255.0 * YUV_U);
        let r = y + c2 / (255.0 * YUV_V);
        [r, (y - YUV_KR * r - YUV_KB * b) / YUV_KG, b].map(|x| x as f32)
    }

    fn encode_block(&self, [r, g, b]: [&[u8]; 3], luma: &mut [f32], c1: &mut [f32], c2: &mut [f32]) {
        let (kr, kg, kb) = (YUV_KR as f32, YUV_KG as f32, YUV_KB as f32);
        let (su, sv) = (YUV_U as f32, YUV_V as f32);
        let n = luma.len();
        let (r, g, b, c1, c2) = (&r[..n], &g[..n], &b[..n], &mut c1[..n], &mut c2[..n]);
        for i in 0..n {
            // Y/255 on [0, 255] inputs is the weighted sum divided by 255: luma01 and the chroma both use y in [0, 1].
            let (r, g, b) = (f32::from(r[i]) / 255.0, f32::from(g[i]) / 255.0, f32::from(b[i]) / 255.0);
            let y = kr * r + kg * g + kb * b;
            luma[i] = y;
            c1[i] = 255.0 * su * (b - y);
            c2[i] = 255.0 * sv * (r - y);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::color::ColorSpace;
    use crate::color::tests::assert_close;

    #[test]
    fn yuv_of_white_and_primaries() {
        let yuv = |rgb| ColorSpace::Yuv.from_srgb(rgb);
        assert_close(yuv([1.0, 1.0, 1.0]), [255.0, 0.0, 0.0], 1e-4, "white");
        // Red: Y = 255 * 0.299 = 76.245, U = 255 * 0.492 * (0 - 0.299) = -37.51254,
        // V = 255 * 0.877 * (1 - 0.299) = 156.768135.
        assert_close(yuv([1.0, 0.0, 0.0]), [76.245, -37.51254, 156.76814], 1e-3, "red");
        // Blue: Y = 255 * 0.114 = 29.07, U = 255 * 0.492 * 0.886 = 111.15756, V = 255 * 0.877 * -0.114.
        assert_close(yuv([0.0, 0.0, 1.0]), [29.07, 111.15756, -25.49439], 1e-3, "blue");
    }
}
