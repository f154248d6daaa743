//! Feature vectors inside insight values: little-endian `f32`s, base64-encoded, so that a
//! 384-dimensional embedding takes 2 KB of JSON rather than 4–8 KB of decimal numbers.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::ParseError;

/// The dot product: the cosine similarity of unit vectors (every embedding space here holds
/// normalised vectors).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len(), "vectors of one space have one length");
    a.iter().zip(b).map(|(x, y)| x * y).sum()
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
    }

    #[test]
    fn rejects_damage() {
        assert!(decode_vector("not base64!").is_err());
        assert!(decode_vector(&STANDARD.encode([1u8, 2, 3])).is_err());
    }
}
