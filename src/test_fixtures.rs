//! Fixtures shared by the unit tests of several modules.

/// Every example shipped in `examples/`, by file name.
pub const EXAMPLES: [(&str, &str); 7] = [
    (
        "tfjob-seed.yaml",
        include_str!("../examples/tfjob-seed.yaml"),
    ),
    (
        "dist-mnist.yaml",
        include_str!("../examples/dist-mnist.yaml"),
    ),
    (
        "chief-worker-evaluator.yaml",
        include_str!("../examples/chief-worker-evaluator.yaml"),
    ),
    (
        "restart-policy-always.yaml",
        include_str!("../examples/restart-policy-always.yaml"),
    ),
    (
        "restart-policy-onfailure.yaml",
        include_str!("../examples/restart-policy-onfailure.yaml"),
    ),
    (
        "restart-policy-never.yaml",
        include_str!("../examples/restart-policy-never.yaml"),
    ),
    (
        "restart-policy-exitcode.yaml",
        include_str!("../examples/restart-policy-exitcode.yaml"),
    ),
];
