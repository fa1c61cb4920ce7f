//! Coalesced status writes (`plan::coalesce`) over a whole lifecycle: progress inside a window
//! makes one write with the final state; terminal conditions are written at once, never lost.

use jiff::Timestamp;

use super::*;
use crate::plan::coalesce::Held;

/// PS×1 + Worker×3, the benchmark's 4-replica job.
const FOUR: &str = r#"
metadata: {name: four}
spec:
  tfReplicaSpecs:
    PS:
      template: {spec: {containers: [{name: tensorflow, image: tf}]}}
    Worker:
      replicas: 3
      template: {spec: {containers: [{name: tensorflow, image: tf}]}}
"#;

const WINDOW: Duration = Duration::from_secs(1);

fn ms(millis: i64) -> Timestamp {
    t(0) + Duration::from_millis(u64::try_from(millis).unwrap())
}

/// Steps the world with coalescing; counts the status writes.
struct Batched {
    world: World,
    held: Option<Held>,
    writes: usize,
}

impl Batched {
    fn new() -> Batched {
        Batched {
            world: World::new(FOUR),
            held: None,
            writes: 0,
        }
    }

    fn step(&mut self, at: i64) -> Plan {
        let plan = self.world.step_coalesced(ms(at), WINDOW, &mut self.held);
        self.writes += usize::from(plan.status.is_some());
        plan
    }
}

use crate::plan::Plan;

#[test]
fn a_whole_lifecycle_makes_three_status_writes() {
    let mut job = Batched::new();
    let plan = job.step(0);
    assert_eq!(plan.create_pods.len(), 4, "children at once");
    assert!(plan.status.is_none(), "Created follows within the window");
    assert_eq!(plan.requeue_after, Some(WINDOW));
    let plan = job.step(1_000);
    assert_eq!(plan.counters, [JobCounter::Created], "counted when written");
    assert_eq!(job.writes, 1);
    assert_eq!(job.world.conditions(), ["Created=True/TFJobCreated"]);

    // Four pods start inside one window: each pass holds the change and asks to look again
    // when the window that began with the first one ends; once a worker runs (Running
    // appears, at 1.7 s), within half a window of that.
    let pods = [
        "four-ps-0",
        "four-worker-0",
        "four-worker-1",
        "four-worker-2",
    ];
    for (i, pod) in pods.iter().enumerate() {
        job.world.run(pod);
        let at = 1_500 + 200 * i as i64;
        let plan = job.step(at);
        assert!(plan.status.is_none(), "{pod} running is held");
        let due = if i == 0 { 2_500 } else { 2_200 };
        let rest = Duration::from_millis(u64::try_from(due - at).unwrap());
        assert_eq!(
            plan.requeue_after,
            Some(rest),
            "{pod}: the rest of the window"
        );
    }
    assert_eq!(job.world.conditions(), ["Created=True/TFJobCreated"]);
    let plan = job.step(2_200);
    assert!(plan.status.is_some(), "the window ends: one write");
    assert_eq!(
        job.world.conditions(),
        ["Created=True/TFJobCreated", "Running=True/TFJobRunning"]
    );
    assert_eq!(
        job.world.replica_statuses(),
        json!({"PS": {"active": 1}, "Worker": {"active": 3}}),
        "the write carries the final counters"
    );
    assert_eq!(job.writes, 2);

    // Two workers finish (held), then worker 0: Succeeded is written at once with them.
    job.world.exit("four-worker-1", 0);
    let plan = job.step(5_000);
    assert!(plan.status.is_none(), "{plan:?}");
    job.world.exit("four-worker-2", 0);
    assert!(job.step(5_100).status.is_none());
    job.world.exit("four-worker-0", 0);
    let plan = job.step(5_200);
    assert!(plan.status.is_some(), "Succeeded is not held");
    assert_eq!(plan.counters, [JobCounter::Succeeded]);
    assert_eq!(
        job.world.conditions(),
        [
            "Created=True/TFJobCreated",
            "Running=False/TFJobRunning",
            "Succeeded=True/TFJobSucceeded"
        ]
    );
    assert_eq!(job.writes, 3, "Created, Running, Succeeded");
    assert_eq!(job.held, None);
}

#[test]
fn a_terminal_condition_inside_a_window_is_written_at_once_with_the_held_progress() {
    let mut job = Batched::new();
    job.step(0);
    job.step(1_000);
    job.world.run("four-ps-0");
    job.world.run("four-worker-0");
    assert!(job.step(1_100).status.is_none(), "Running is held");
    job.world.exit("four-worker-0", 0);
    let plan = job.step(1_400);
    assert!(
        plan.status.is_some(),
        "Succeeded inside the window is written at once"
    );
    let conditions = job.world.conditions();
    assert_eq!(conditions.last().unwrap(), "Succeeded=True/TFJobSucceeded");
    assert!(
        conditions.contains(&"Running=False/TFJobRunning".to_string()),
        "the held Running transition is recorded, in order: {conditions:?}"
    );
    assert_eq!(job.writes, 2);
    // Nothing is left held; the next pass at the window's end writes nothing.
    assert!(job.step(2_100).status.is_none());
}

#[test]
fn a_job_that_fails_validation_is_written_at_once() {
    let mut world = World::new(&FOUR.replace("replicas: 3", "replicas: -1"));
    let mut held = None;
    let plan = world.step_coalesced(ms(0), WINDOW, &mut held);
    assert!(plan.status.is_some());
    assert_eq!(
        world.conditions().last().unwrap(),
        "Failed=True/TFJobFailedValidation"
    );
}

#[test]
fn a_failure_inside_a_window_is_written_at_once() {
    let mut job = Batched::new();
    job.step(0);
    job.step(1_000);
    job.world.run("four-ps-0");
    assert!(job.step(1_100).status.is_none());
    job.world.exit("four-worker-1", 1);
    let plan = job.step(1_200);
    assert!(plan.status.is_some());
    assert_eq!(
        job.world.conditions().last().unwrap(),
        "Failed=True/TFJobFailed"
    );
    assert_eq!(plan.counters, [JobCounter::Failed]);
}

#[test]
fn a_change_that_goes_away_inside_the_window_writes_nothing() {
    let mut job = Batched::new();
    job.step(0);
    job.step(1_000);
    job.world.run("four-ps-0");
    assert!(job.step(1_100).status.is_none());
    job.world.set("four-ps-0", "Pending", None, 0);
    assert!(job.step(1_600).status.is_none());
    assert_eq!(job.held, None, "nothing to write: nothing held");
    assert_eq!(job.writes, 1);
}
