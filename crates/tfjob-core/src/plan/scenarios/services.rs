//! The headless Services of both service modes.

use super::*;

#[test]
fn per_job_service_mode_creates_one_service() {
    let mut world = World::new(&mnist("", "Never"));
    world.config.service_mode = ServiceMode::PerJob;
    let plan = world.step(t(0));
    assert_eq!(plan.create_pods.len(), 3);
    assert_eq!(world.service_names(), ["mnist"]);
    assert!(world.step(t(1)).is_noop());
}

#[test]
fn missing_services_are_recreated() {
    let mut world = World::new(&mnist("", "Never"));
    world.step(t(0));
    world
        .services
        .retain(|s| s.metadata.name.as_deref() != Some("mnist-worker-1"));
    let plan = world.step(t(1));
    assert_eq!(plan.create_services.len(), 1);
    assert_eq!(
        plan.create_services[0].metadata.name.as_deref(),
        Some("mnist-worker-1")
    );
}
