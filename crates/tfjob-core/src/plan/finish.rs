//! Finished and suspended jobs: `cleanPodPolicy`, `ttlSecondsAfterFinished` (§7.10–7.12).

use super::conditions::{self, FALSE, TRUE, reason};
use super::messages;
use super::observe::Phase;
use super::planner::{ChildRef, Planner};
use crate::api::{CleanPodPolicy, EffectiveSpec};

impl Planner<'_> {
    /// Every pass of a finished job: clean up per policy (idempotent) and run the TTL timer.
    pub(super) fn finished(&mut self, spec: &EffectiveSpec) {
        if conditions::is_true(&self.status.conditions, conditions::SUCCEEDED) {
            for status in self.status.replica_statuses.values_mut() {
                status.succeeded += status.active;
                status.active = 0;
            }
        }
        match spec.clean_pod_policy {
            CleanPodPolicy::None => {}
            CleanPodPolicy::Running => {
                let doomed: Vec<String> = self
                    .pods
                    .iter()
                    .filter(|p| {
                        !p.terminating && matches!(p.phase, Phase::Running | Phase::Pending)
                    })
                    .map(|p| p.name.clone())
                    .collect();
                self.delete_pods_and_their_services(|name| doomed.iter().any(|d| d == name), false);
            }
            // Every Service of the job goes too, not only those with a pod (upstream #1191).
            CleanPodPolicy::All => self.delete_pods_and_their_services(|_| true, true),
        }
        self.delete_pod_group();
        self.expire_after_ttl(spec);
    }

    /// Suspended: no pods, no Services, no timers; `Running` turns False once.
    pub(super) fn suspend(&mut self) {
        self.delete_pods_and_their_services(|_| true, true);
        self.delete_pod_group();
        for status in self.status.replica_statuses.values_mut() {
            status.active = 0;
        }
        let message = messages::suspended(&self.name);
        if conditions::is_true(&self.status.conditions, conditions::RUNNING) {
            self.set_condition(conditions::RUNNING, FALSE, reason::SUSPENDED, &message);
        }
        if !conditions::is_true(&self.status.conditions, conditions::SUSPENDED)
            && self.set_condition(conditions::SUSPENDED, TRUE, reason::SUSPENDED, &message)
        {
            self.event(false, reason::SUSPENDED, message);
        }
    }

    /// Deletes pods whose name matches, with the Services of the same name (or all Services).
    fn delete_pods_and_their_services(
        &mut self,
        doomed: impl Fn(&str) -> bool,
        all_services: bool,
    ) {
        let pods: Vec<ChildRef> = self
            .pods
            .iter()
            .filter(|p| !p.terminating && doomed(&p.name))
            .map(|p| ChildRef {
                name: p.name.clone(),
                uid: p.uid.clone(),
            })
            .collect();
        let services: Vec<ChildRef> = self
            .services
            .iter()
            .filter(|s| !s.terminating && (all_services || pods.iter().any(|p| p.name == s.name)))
            .map(|s| ChildRef {
                name: s.name.clone(),
                uid: s.uid.clone(),
            })
            .collect();
        self.plan.delete_pods.extend(pods);
        self.plan.delete_services.extend(services);
    }

    /// Deletes the TFJob `ttlSecondsAfterFinished` after completion, by timer (upstream only
    /// noticed at the next resync before #1614), and also when the job is suspended (#2239).
    fn expire_after_ttl(&mut self, spec: &EffectiveSpec) {
        let Some(ttl) = spec.ttl_seconds_after_finished else {
            return;
        };
        self.mark_completion();
        let completion = self
            .status
            .completion_time
            .as_ref()
            .map_or(self.now, |t| t.0);
        let expiry = completion.as_second().saturating_add(i64::from(ttl));
        if self.now.as_second() >= expiry {
            self.plan.delete_job = true;
        } else {
            self.requeue_at(expiry);
        }
    }
}
