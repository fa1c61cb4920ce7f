//! How many children one pass materialises. A pass builds the pods it creates in memory, and
//! in the standard TF_CONFIG form every pod lists every host, so a job's pods together grow
//! with the square of its replicas (3,000 workers: ~280 MB). A pass therefore builds at most
//! [`MAX_CREATES_PER_PASS`] children (the Job and ReplicaSet controllers' limit) and at most
//! [`TF_CONFIG_BYTES_PER_PASS`] of TF_CONFIG, and the shell plans again at once for the rest.

/// Children (pods or Services) one pass creates at most.
pub const MAX_CREATES_PER_PASS: usize = 500;

/// TF_CONFIG bytes the pods of one pass hold together at most.
pub const TF_CONFIG_BYTES_PER_PASS: usize = 16 << 20;

/// The pods one pass creates when each one's TF_CONFIG is at most `tf_config_len` bytes.
pub fn pods_per_pass(tf_config_len: usize) -> usize {
    (TF_CONFIG_BYTES_PER_PASS / tf_config_len.max(1)).clamp(1, MAX_CREATES_PER_PASS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_are_bounded_by_count_and_by_tf_config_bytes() {
        let cases = [
            // (longest TF_CONFIG, pods per pass)
            (0, MAX_CREATES_PER_PASS),
            (200, MAX_CREATES_PER_PASS),
            (32 * 1024, 512.min(MAX_CREATES_PER_PASS)),
            (96 * 1024, 170),
            (128 * 1024, 128),
            (usize::MAX, 1),
        ];
        for (len, expected) in cases {
            assert_eq!(pods_per_pass(len), expected, "TF_CONFIG of {len} bytes");
            assert!(
                pods_per_pass(len) * len.min(TF_CONFIG_BYTES_PER_PASS) <= TF_CONFIG_BYTES_PER_PASS
            );
        }
    }
}
