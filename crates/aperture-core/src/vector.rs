//! Feature vectors inside insight values: little-endian `f32`s, base64-encoded, so that a
//! 384-dimensional embedding takes 2 KB of JSON rather than 4–8 KB of decimal numbers.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::ParseError;

/// The dot product: the cosine similarity of unit vectors (every embedding space here holds
/// normalised vectors).
///
/// Summed in sixteen lanes, which the compiler turns into SIMD (one running sum cannot be: the
/// order of float additions would change), with AVX2 where the CPU has it; an exact scan of
/// the search index and every re-scored candidate run on it.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len(), "vectors of one space have one length");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { dot_avx2(a, b) };
    }
    dot_lanes(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_lanes(a, b)
}

#[inline(always)]
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let (a_rest, b_rest) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_rest
        .remainder()
        .iter()
        .zip(b_rest.remainder())
        .map(|(x, y)| x * y)
        .sum();
    let mut lanes = [0.0f32; LANES];
    for (x, y) in a_rest.zip(b_rest) {
        for ((lane, x), y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += x * y;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// The text form of a vector.
pub fn encode_vector(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    STANDARD.encode(bytes)
}

/// A vector from its text form.
pub fn decode_vector(text: &str) -> Result<Vec<f32>, ParseError> {
    let bytes = STANDARD
        .decode(text)
        .map_err(|_| ParseError::new("vector", text, "not base64"))?;
    if bytes.len() % 4 != 0 {
        return Err(ParseError::new(
            "vector",
            text,
            "not a whole number of 32-bit floats",
        ));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trips(v in proptest::collection::vec(any::<f32>(), 0..64)) {
            let back = decode_vector(&encode_vector(&v)).unwrap();
            prop_assert_eq!(back.len(), v.len());
            for (a, b) in back.iter().zip(&v) {
                prop_assert_eq!(a.to_bits(), b.to_bits());
            }
        }

        #[test]
        fn dot_is_the_sum_of_products(
            pairs in proptest::collection::vec((-1.0f32..1.0, -1.0f32..1.0), 0..100)
        ) {
            let (a, b): (Vec<f32>, Vec<f32>) = pairs.into_iter().unzip();
            let exact: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            prop_assert!((dot(&a, &b) as f64 - exact).abs() < 1e-4, "{} vs {exact}", dot(&a, &b));
        }
    }

    #[test]
    fn rejects_damage() {
        assert!(decode_vector("not base64!").is_err());
        assert!(decode_vector(&STANDARD.encode([1u8, 2, 3])).is_err());
    }
}
