//! The simulated town and its postmen's phones: rounds published into the database, and each
//! phone downloading its round and recording one attempt per item offline, ready to push.

use indicatif::{ProgressBar, ProgressStyle};
use tournee_server::auth::{Keys, TokenRole};
use tournee_server::db::Database;
use tournee_server::settings::{AuthSettings, DEV_JWT_SECRET};
use tournee_sync_core::automerge::{Automerge, Change, ReadDoc};
use tournee_sync_core::fixtures;
use tournee_sync_core::model::{Attempt, RoundManifest, Stop};
use tournee_sync_core::operations;
use tournee_sync_core::signing::{Signer, SoftwareKey};
use tournee_sync_core::sync::wire::{
    self, DocRequest, Limits, RequestBody, ResponseBody, SyncRequest,
};
use tournee_sync_core::DocId;

/// Items per delivery point in every round.
pub const ITEMS_PER_POINT: u32 = 3;

/// The shape of the town: `devices` postmen, each with a round of `items` items over
/// `items / ITEMS_PER_POINT` delivery points of their own.
#[derive(Clone, Copy)]
pub struct Town {
    pub devices: u32,
    pub items: u32,
    /// Devices register signing keys and sign their changes.
    pub signed: bool,
}

impl Town {
    fn points_per_device(self) -> u32 {
        self.items.div_ceil(ITEMS_PER_POINT)
    }

    /// Registers every device and creates every delivery point with its document (once per
    /// database: rounds of later days visit the same points).
    pub async fn seed_devices_and_points(self, db: &Database) {
        let seeding = progress(u64::from(self.devices), "devices and points");
        for d in 0..self.devices {
            db.register_device(&device_id(d), &postman_id(d))
                .await
                .unwrap();
            if self.signed {
                db.register_device_key(&device_id(d), &device_key(d).public_key(), 0)
                    .await
                    .unwrap();
            }
            for k in 0..self.points_per_device() {
                let p = d * self.points_per_device() + k;
                let reference = fixtures::reference_address(p);
                let pin = reference.pin.map(|g| (g.lat, g.lon));
                let id = fixtures::delivery_point_id(p);
                db.insert_delivery_point(&id, None, &reference.lines, pin, 1)
                    .await
                    .unwrap();
                db.insert_document(
                    &DocId::delivery_point(&id).unwrap(),
                    &fixtures::delivery_point_doc(p).unwrap().save(),
                )
                .await
                .unwrap();
            }
            seeding.inc(1);
        }
        seeding.finish();
    }

    /// Publishes one round per device for `date`: `items` new plain items each (attempts are
    /// all allowed), numbered from `day * devices * items` so that every day's items are new.
    pub async fn publish_rounds(self, db: &Database, date: &str, day: u32) {
        let publishing = progress(u64::from(self.devices), "publishing rounds");
        let first_item = day * self.devices * self.items;
        for d in 0..self.devices {
            let mut stops: Vec<Stop> = Vec::new();
            for i in 0..self.items {
                let k = i / ITEMS_PER_POINT;
                let point = fixtures::delivery_point_id(d * self.points_per_device() + k);
                let s10 = fixtures::s10(first_item + d * self.items + i);
                db.insert_item(s10.as_str(), &point, None, false, 0)
                    .await
                    .unwrap();
                let doc = operations::new_item(
                    fixtures::server_actor(),
                    &s10,
                    &point,
                    Default::default(),
                )
                .unwrap();
                db.insert_document(&DocId::item(&s10), &doc.save())
                    .await
                    .unwrap();
                if stops.len() as u32 == k {
                    stops.push(Stop {
                        order: k + 1,
                        delivery_point: point,
                        items: Vec::new(),
                    });
                }
                stops[k as usize].items.push(s10.to_string());
            }
            db.insert_round(&RoundManifest {
                round_id: format!("load-{date}-{d}"),
                date: date.to_string(),
                postman: postman_id(d),
                device: device_id(d),
                stops,
            })
            .await
            .unwrap();
            publishing.inc(1);
        }
        publishing.finish();
    }
}

pub fn device_id(d: u32) -> String {
    format!("dev-{d}")
}

pub fn postman_id(d: u32) -> String {
    format!("pm-{d}")
}

/// Device `d`'s signing key: derived from its id, so seeding and the phones agree without
/// sharing state.
pub fn device_key(d: u32) -> SoftwareKey {
    use sha2::Digest;
    SoftwareKey::from_secret(&sha2::Sha256::digest(device_id(d).as_bytes())).unwrap()
}

/// The server's tokens, minted with the development secret the server runs with.
pub fn development_keys() -> Keys {
    Keys::from_settings(&AuthSettings {
        jwt_secret: DEV_JWT_SECRET.into(),
        jwt_public_key: None,
        jwt_algorithm: "RS256".into(),
        jwt_audience: "tournee".into(),
        jwt_issuer: "tournee-dev".into(),
        insecure_development: true,
    })
    .unwrap()
}

/// A progress bar on standard error.
pub fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>22} [{bar:40}] {pos}/{len} {elapsed}")
            .unwrap()
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// A postman's phone after downloading its round and recording one attempt per item offline.
pub struct Phone {
    pub token: String,
    /// The documents as downloaded (the floor applies the pushed changes to them).
    pub docs: Vec<Automerge>,
    /// One push per item, in the round's order.
    pub pushes: Vec<DocRequest>,
    /// The change each push carries.
    pub changes: Vec<Change>,
    /// The cursor and history of the last answer.
    pub since: Option<u64>,
    pub history: Option<u64>,
}

impl Phone {
    /// Downloads the round of `date` of device `d` from the server at `base` and records
    /// `attempt(d, i)` on its i-th item.
    pub async fn download_and_record(
        client: &reqwest::Client,
        base: &str,
        keys: &Keys,
        d: u32,
        date: &str,
        attempt: impl Fn(u32, u32) -> Attempt,
        signed: bool,
    ) -> Phone {
        let token = keys
            .mint(
                &postman_id(d),
                TokenRole::Postman,
                Some(&device_id(d)),
                24 * 3600,
            )
            .unwrap();
        let rounds: Vec<RoundManifest> = client
            .get(format!("{base}/v1/rounds"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let round = rounds
            .into_iter()
            .find(|r| r.date == date)
            .unwrap_or_else(|| panic!("no round of {date} for device {d}"));
        let items: Vec<DocId> = round
            .documents()
            .unwrap()
            .into_iter()
            .filter(|id| id.as_str().starts_with("item:"))
            .collect();
        let fetch = SyncRequest {
            since: None,
            history: None,
            docs: items
                .iter()
                .map(|id| DocRequest {
                    doc: id.clone(),
                    body: RequestBody::Fetch,
                })
                .collect(),
        };
        let answer = client
            .post(format!("{base}/v1/sync"))
            .bearer_auth(&token)
            .body(wire::encode_request(&fetch))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let answer = wire::decode_response(&answer, &Limits::default()).unwrap();
        let mut phone = Phone {
            token,
            docs: Vec::new(),
            pushes: Vec::new(),
            changes: Vec::new(),
            since: Some(answer.cursor),
            history: answer.history,
        };
        for entry in answer.docs {
            let ResponseBody::Update { chunks, .. } = entry.body else {
                panic!("fetch refused: {:?}", entry.body)
            };
            let mut doc = Automerge::new();
            for chunk in chunks {
                doc.load_incremental(&chunk).unwrap();
            }
            let mut recorded = doc.fork();
            let hash = operations::record_attempt(
                &mut recorded,
                &operations::new_entry_id(),
                &attempt(d, phone.pushes.len() as u32),
            )
            .unwrap()
            .unwrap();
            let change = recorded.get_change_by_hash(&hash).unwrap();
            let signatures = if signed {
                let signer = Signer::Device {
                    device: device_id(d),
                };
                vec![device_key(d).sign_change(&entry.doc, &hash, signer)]
            } else {
                Vec::new()
            };
            phone.pushes.push(DocRequest {
                doc: entry.doc,
                body: RequestBody::Push {
                    changes: vec![change.raw_bytes().to_vec().into()],
                    extra_heads: Default::default(),
                    signatures,
                },
            });
            phone.changes.push(change);
            phone.docs.push(doc);
        }
        phone
    }
}

/// "Addressee absent", the storm's and the steady day's interaction.
pub fn absent(d: u32, i: u32) -> Attempt {
    fixtures::absent_attempt(&device_id(d), &postman_id(d), i)
}
