//! The round (tournée) the server publishes to a postman's device: which stops, in which order.

use serde::{Deserialize, Serialize};

use crate::ids::DocId;
use crate::rules::{self, Field, Violation};
use crate::s10::S10;

/// A round as published to one device for one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct RoundManifest {
    /// The round's id.
    pub round_id: String,
    /// The day, `YYYY-MM-DD`.
    pub date: String,
    /// The postman it is assigned to.
    pub postman: String,
    /// The device it is assigned to.
    pub device: String,
    /// The stops, in delivery order.
    pub stops: Vec<Stop>,
}

/// One stop of a round: a delivery point and the items for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Stop {
    /// Position in the round, from 1.
    pub order: u32,
    /// The delivery point's id.
    pub delivery_point: String,
    /// The S10 numbers of the items to present there.
    pub items: Vec<String>,
}

impl RoundManifest {
    /// Every document the round needs on the device, in stop order.
    pub fn documents(&self) -> Result<Vec<DocId>, Violation> {
        let mut ids = Vec::new();
        for stop in &self.stops {
            ids.push(DocId::delivery_point(&stop.delivery_point)?);
            for item in &stop.items {
                ids.push(DocId::item(&S10::parse(item)?));
            }
        }
        Ok(ids)
    }

    /// Checks ids, the date and that stops are in order.
    pub fn validate(&self) -> Result<(), Violation> {
        rules::identifier(Field::EntryId, &self.round_id)?;
        rules::date(Field::Date, &self.date)?;
        rules::identifier(Field::Postman, &self.postman)?;
        rules::identifier(Field::Device, &self.device)?;
        self.documents()?;
        if self.stops.windows(2).any(|w| w[0].order >= w[1].order) {
            return Err(Violation::new(
                Field::Path,
                "stops must be in increasing order",
            ));
        }
        Ok(())
    }
}
