//! `docker system df`: the disk used by images (their layers, shared or
//! not, and how many containers use each) and by containers (their
//! snapshots). Volumes and the build cache do not exist in berth yet.
//!
//! An image's size is the sum of its layer blobs as stored (what `docker
//! images` lists); a layer is shared when more than one image has it.

use std::collections::HashMap;
use std::sync::Arc;

use crate::containers::fs::ContainerSize;
use crate::error::Result;
use crate::images::ImageSummary;
use crate::model::ContainerRecord;
use crate::Engine;

/// One image's part of the disk usage.
#[derive(Debug, Clone)]
pub struct ImageUsage {
    pub image: ImageSummary,
    pub size: i64,
    /// Bytes of its layers that other images have too.
    pub shared_size: i64,
    /// Containers created from it.
    pub containers: i64,
}

/// Everything `docker system df` reports.
#[derive(Debug, Clone)]
pub struct DiskUsage {
    /// Bytes of all distinct layers.
    pub layers_size: i64,
    pub images: Vec<ImageUsage>,
    pub containers: Vec<(Arc<ContainerRecord>, ContainerSize)>,
}

/// Sizes of each image: (own total, shared part), and of all distinct
/// layers, from `(image layers as (digest, size))`.
pub fn layer_sizes(images: &[Vec<(String, i64)>]) -> (Vec<(i64, i64)>, i64) {
    let mut users: HashMap<&str, (i64, usize)> = HashMap::new();
    for layers in images {
        let mut seen = std::collections::HashSet::new();
        for (digest, size) in layers {
            if seen.insert(digest.as_str()) {
                users.entry(digest.as_str()).or_insert((*size, 0)).1 += 1;
            }
        }
    }
    let per_image = images
        .iter()
        .map(|layers| {
            let size = layers.iter().map(|(_, s)| s).sum();
            let shared = layers.iter().filter(|(d, _)| users.get(d.as_str()).is_some_and(|u| u.1 > 1)).map(|(_, s)| s).sum();
            (size, shared)
        })
        .collect();
    (per_image, users.values().map(|(s, _)| s).sum())
}

impl Engine {
    /// `docker system df`.
    pub async fn disk_usage(&self) -> Result<DiskUsage> {
        let images = self.images.list().await?;
        let layers: Vec<Vec<(String, i64)>> =
            images.iter().map(|i| i.info.manifest.layers.iter().map(|l| (l.digest.clone(), l.size)).collect()).collect();
        let (sizes, layers_size) = layer_sizes(&layers);
        let records = self.containers.list();
        let images = images
            .into_iter()
            .zip(sizes)
            .map(|(image, (size, shared_size))| {
                let containers = records.iter().filter(|r| r.image_id == image.id).count() as i64;
                ImageUsage { image, size, shared_size, containers }
            })
            .collect();
        let mut containers = Vec::with_capacity(records.len());
        for rec in records {
            let size = self.containers.size(&rec.id).await?;
            containers.push((rec, size));
        }
        Ok(DiskUsage { layers_size, images, containers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_layers_count_once_in_the_total() {
        let l = |d: &str, s: i64| (d.to_string(), s);
        let (per, total) = layer_sizes(&[vec![l("a", 10), l("b", 5)], vec![l("a", 10), l("c", 1)], vec![]]);
        assert_eq!(per, vec![(15, 10), (11, 10), (0, 0)]);
        assert_eq!(total, 16);
    }
}
