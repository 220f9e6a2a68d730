//! The captcha image: the 6 digits drawn into a 128×64 grayscale PNG with jitter and
//! noise, by a small bitmap font and an uncompressed PNG writer (no image crate, no
//! font file). It slows a script down; it is not meant to stop a determined one,
//! which is why prelogin is also limited per address and per identity.

const WIDTH: usize = 128;
const HEIGHT: usize = 64;
const SCALE: usize = 3;

/// 5×7 glyphs of the digits, a row per byte, the leftmost pixel in bit 4.
const GLYPHS: [[u8; 7]; 10] = [
    [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e],
    [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
    [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f],
    [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e],
    [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02],
    [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e],
    [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e],
    [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
    [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e],
    [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c],
];

/// A PNG showing `digits` (ASCII digits; anything else is drawn as a gap).
pub fn png(digits: &str) -> Vec<u8> {
    let mut noise = [0u8; 1024];
    // Without randomness the image is still readable, only plainer.
    let _ = getrandom::fill(&mut noise);
    let mut next = {
        let mut i = 0usize;
        move || {
            i = (i + 1) % noise.len();
            noise[i]
        }
    };
    let mut pixels = vec![245u8; WIDTH * HEIGHT];
    for (n, d) in digits.bytes().take(6).enumerate() {
        let Some(glyph) = d.checked_sub(b'0').and_then(|d| GLYPHS.get(d as usize)) else {
            continue;
        };
        let x0 = 8 + n * 19 + (next() % 3) as usize;
        let y0 = 14 + (next() % 16) as usize;
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..5 {
                if bits & (0x10 >> col) == 0 {
                    continue;
                }
                for dy in 0..SCALE {
                    for dx in 0..SCALE {
                        let (x, y) = (x0 + col * SCALE + dx, y0 + row * SCALE + dy);
                        if x < WIDTH && y < HEIGHT {
                            pixels[y * WIDTH + x] = 30;
                        }
                    }
                }
            }
        }
    }
    // Speckles and three lines across the digits.
    for _ in 0..600 {
        let at = (usize::from(next()) << 8 | usize::from(next())) % pixels.len();
        pixels[at] = pixels[at].wrapping_add(next() % 128).max(60);
    }
    for _ in 0..3 {
        let (y1, y2) = (usize::from(next()) % HEIGHT, usize::from(next()) % HEIGHT);
        for x in 0..WIDTH {
            let y = (y1 * (WIDTH - x) + y2 * x) / WIDTH;
            pixels[y * WIDTH + x] = 90;
        }
    }
    encode(&pixels)
}

/// An 8-bit grayscale PNG of `pixels` (row-major, `WIDTH`×`HEIGHT`), its image data
/// in stored (uncompressed) deflate blocks.
fn encode(pixels: &[u8]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(HEIGHT * (WIDTH + 1));
    for row in pixels.chunks(WIDTH) {
        raw.push(0); // filter: none
        raw.extend_from_slice(row);
    }
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(block);
    }
    z.extend_from_slice(&adler32(&raw).to_be_bytes());

    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&(WIDTH as u32).to_be_bytes());
    ihdr.extend_from_slice(&(HEIGHT as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);

    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in bytes {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    b << 16 | a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_match_known_values() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }

    #[test]
    fn the_image_is_a_png_of_the_right_size() {
        let png = png("123456");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(
            u32::from_be_bytes([png[16], png[17], png[18], png[19]]),
            128
        );
        assert_eq!(u32::from_be_bytes([png[20], png[21], png[22], png[23]]), 64);
        assert!(
            png.ends_with(&[0xae, 0x42, 0x60, 0x82]),
            "IEND's CRC closes it"
        );
    }
}
