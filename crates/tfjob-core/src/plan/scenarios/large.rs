//! Large jobs are created over several passes, each holding a bounded amount in memory.

use super::*;
use crate::plan::rules::batches::{MAX_CREATES_PER_PASS, TF_CONFIG_BYTES_PER_PASS};

fn workers(n: i32, dynamic: bool) -> String {
    format!(
        r#"
metadata: {{name: big}}
spec:
  enableDynamicWorker: {dynamic}
  tfReplicaSpecs:
    PS:
      template: {{spec: {{containers: [{{name: tensorflow, image: tf}}]}}}}
    Worker:
      replicas: {n}
      template: {{spec: {{containers: [{{name: tensorflow, image: tf}}]}}}}
"#
    )
}

fn tf_config_bytes(plan: &crate::plan::Plan) -> usize {
    plan.create_pods
        .iter()
        .flat_map(|p| &p.spec.as_ref().unwrap().containers)
        .flat_map(|c| c.env.iter().flatten())
        .filter(|e| e.name == "TF_CONFIG")
        .map(|e| e.value.as_deref().unwrap_or_default().len())
        .sum()
}

#[test]
fn a_large_job_is_created_in_bounded_passes_until_complete() {
    let cases = [
        // (workers, sparse TF_CONFIG, passes expected at most)
        (1_200, true, 3),
        (1_500, false, 10),
    ];
    for (n, dynamic, max_passes) in cases {
        let mut world = World::new(&workers(n, dynamic));
        let mut passes = 0;
        loop {
            let plan = world.step(t(passes));
            passes += 1;
            // The world keeps every pod; only the plan has to be bounded.
            for pod in &mut world.pods {
                for c in &mut pod.spec.as_mut().unwrap().containers {
                    c.env = None;
                }
            }
            assert!(plan.create_pods.len() <= MAX_CREATES_PER_PASS);
            assert!(plan.create_services.len() <= MAX_CREATES_PER_PASS);
            assert!(
                tf_config_bytes(&plan) <= TF_CONFIG_BYTES_PER_PASS,
                "{n} workers"
            );
            let more = world.pods.len() < n as usize + 1 || world.services.len() < n as usize + 1;
            if more {
                assert_eq!(
                    plan.requeue_after,
                    Some(Duration::ZERO),
                    "asks for the next pass at once"
                );
            } else {
                break;
            }
            assert!(
                passes <= max_passes,
                "{n} workers: still creating after {passes} passes"
            );
        }
        assert_eq!(world.pods.len(), n as usize + 1);
        assert_eq!(world.services.len(), n as usize + 1);
        assert!(world.step(t(passes)).create_pods.is_empty());
    }
}
