//! `docker rmi` and `docker image prune`.

use std::collections::BTreeMap;

use super::{anonymous_name, familiar, short, ImageService, ImageSummary, ResolvedImage};
use crate::error::{EngineError, Result};
use crate::events::Event;
use crate::reference;

impl ImageService {
    /// `docker rmi`. Given a name: untags it, and deletes the image when it
    /// was its last name. Given an id: untags every name and deletes it
    /// (several names need `force`). `in_use` names a container using the
    /// image id; without `force` that is a conflict, with `force` the names
    /// go but the image stays (as dangling) for the container.
    pub async fn remove(&self, given: &str, force: bool, in_use: impl Fn(&str) -> Option<String>) -> Result<Vec<Removed>> {
        let img = self.resolve(given).await?;
        let by_name = reference::parse(given).ok().map(|r| r.full()).filter(|f| *f == img.name && !f.starts_with("sha256:"));
        let (names, anonymous) = self.names_of(&img.id).await?;
        let user = in_use(&img.id);
        let mut out = Vec::new();
        match by_name {
            Some(name) if names.len() > 1 => {
                // Other names remain: only untag.
                self.untag(&img.id, &name, &mut out).await?;
                return Ok(out);
            }
            Some(name) => {
                if let (Some(cid), false) = (&user, force) {
                    return Err(EngineError::Conflict(format!(
                        "conflict: unable to remove repository reference \"{}\" (must force) - container {} is using its referenced image {}",
                        familiar(&name),
                        short(cid),
                        short(&img.id)
                    )));
                }
            }
            None => {
                if !force {
                    if names.len() > 1 {
                        return Err(EngineError::Conflict(format!(
                            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                            short(&img.id)
                        )));
                    }
                    if let Some(cid) = &user {
                        return Err(EngineError::Conflict(format!(
                            "conflict: unable to delete {} (must be forced) - image is being used by container {}",
                            short(&img.id),
                            short(cid)
                        )));
                    }
                }
            }
        }
        if user.is_some() {
            // Keep the image reachable for its container.
            self.ensure_anonymous(&img, &anonymous).await?;
        }
        for n in &names {
            self.untag(&img.id, n, &mut out).await?;
        }
        if user.is_none() {
            for a in &anonymous {
                self.store.delete(a).await?;
            }
            out.push(Removed::Deleted(img.id.clone()));
            self.publish("delete", &img.id, None);
        }
        Ok(out)
    }

    /// Deletes whole images (every name) for `docker image prune`; the
    /// caller chose them (unused, matching the filters). Returns what was
    /// removed and the bytes reclaimed (sum of the images' sizes).
    pub async fn prune(&self, images: &[ImageSummary]) -> Result<(Vec<Removed>, i64)> {
        let mut out = Vec::new();
        let mut reclaimed = 0;
        for s in images {
            let (names, anonymous) = self.names_of(&s.id).await?;
            for n in &names {
                self.untag(&s.id, n, &mut out).await?;
            }
            for a in &anonymous {
                self.store.delete(a).await?;
            }
            out.push(Removed::Deleted(s.id.clone()));
            reclaimed += s.info.size;
            self.publish("delete", &s.id, None);
        }
        let mut attrs = BTreeMap::new();
        attrs.insert("reclaimed".to_string(), reclaimed.to_string());
        self.events.publish(Event::new("image", "prune", "", attrs));
        Ok((out, reclaimed))
    }

    async fn untag(&self, id: &str, name: &str, out: &mut Vec<Removed>) -> Result<()> {
        match self.store.delete(name).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        out.push(Removed::Untagged(familiar(name)));
        self.publish("untag", id, Some(familiar(name)));
        Ok(())
    }

    /// Makes sure an image keeps a `sha256:<hex>` record (it stays, as
    /// `<none>`, when its names go).
    async fn ensure_anonymous(&self, img: &ResolvedImage, anonymous: &[String]) -> Result<()> {
        if anonymous.is_empty() {
            self.store.tag(&img.name, &anonymous_name(&img.id)).await?;
        }
        Ok(())
    }

}

/// One line of `docker rmi` / `image prune` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// A familiar name (`bb:latest`).
    Untagged(String),
    /// An image id.
    Deleted(String),
}
