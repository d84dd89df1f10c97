//! sRGB <-> Lab / YUV / HSV conversions, per pixel and batched.
