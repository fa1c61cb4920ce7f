//! A watch in a task of its own that hands every object it sees (listed or changed) to a
//! callback, until dropped: the benchmark's clocks of when things appear.

use futures::StreamExt;
use kube::{Api, Resource};
use kube_runtime::watcher;
use serde::de::DeserializeOwned;

pub struct Watching(tokio::task::JoinHandle<()>);

impl Watching {
    pub fn start<K>(api: Api<K>, mut seen: impl FnMut(K) + Send + 'static) -> Watching
    where
        K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
    {
        Watching(tokio::spawn(async move {
            let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
            while let Some(event) = stream.next().await {
                if let Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) = event
                {
                    seen(object);
                }
            }
        }))
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.abort();
    }
}
