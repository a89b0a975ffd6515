//! The import's line formats, one per kind, and what a line means on its own: its natural key,
//! its canonical form (what "unchanged" compares), and the rules it must follow before anything
//! is looked up.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tournee_sync_core::model::{
    AccessNotes, GeoPoint, HouseSuffix, ReferenceAddress, Requirements,
};
use tournee_sync_core::rules::{self, Field, Violation};
use tournee_sync_core::S10;

/// What an import loads; one kind per request or file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Delivery points: addresses, pins, access data.
    DeliveryPoints,
    /// Customers: name, contact channels with consent, their delivery points.
    Customers,
    /// Items: S10, delivery point, requirements, sender, arrival (EMG).
    Items,
    /// Pickup points and post offices.
    PickupPoints,
    /// Rounds: day, office, postman, devices, ordered stops.
    Rounds,
    /// Devices: registered to a postman, or revoked.
    Devices,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 6] = [
        Kind::DeliveryPoints,
        Kind::Customers,
        Kind::Items,
        Kind::PickupPoints,
        Kind::Rounds,
        Kind::Devices,
    ];

    /// As the API path and the command line name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::DeliveryPoints => "delivery-points",
            Kind::Customers => "customers",
            Kind::Items => "items",
            Kind::PickupPoints => "pickup-points",
            Kind::Rounds => "rounds",
            Kind::Devices => "devices",
        }
    }

    /// The kind a name means.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The names, for messages.
    pub fn names() -> String {
        Self::ALL.map(Kind::as_str).join(", ")
    }
}

/// A delivery point: its NF Z10-011 address, pin and access data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryPointLine {
    /// Natural key.
    pub id: String,
    /// The printed address lines (1 to 6, of at most 38 characters).
    pub lines: Vec<String>,
    /// The house number.
    pub house_number: String,
    /// `bis`, `ter`, `quater`.
    #[serde(default)]
    pub suffix: Option<HouseSuffix>,
    /// The street.
    pub street: String,
    /// The postcode.
    pub postcode: String,
    /// The town.
    pub city: String,
    /// Building or entrance.
    #[serde(default)]
    pub building: Option<String>,
    /// Where the door is.
    #[serde(default)]
    pub pin: Option<GeoPoint>,
    /// Door code, floor, mailbox, notes.
    #[serde(default)]
    pub access: AccessNotes,
}

/// How a customer may be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// E-mail.
    Email,
    /// Text messages.
    Sms,
    /// Telephone calls.
    Phone,
    /// The app's notifications.
    Push,
}

/// A contact channel and the customer's consent to be notified through it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// The channel.
    pub channel: Channel,
    /// The address or number on it.
    pub address: String,
    /// Whether the customer agreed to delivery notifications there.
    pub consent: bool,
}

/// A customer and their delivery points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerLine {
    /// Natural key.
    pub id: String,
    /// How they are named.
    pub display_name: String,
    /// Contact channels.
    #[serde(default)]
    pub contacts: Vec<Contact>,
    /// Their delivery points (loaded before).
    #[serde(default)]
    pub delivery_points: Vec<String>,
}

/// An item arrived at the delivery office (UPU event EMG).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemLine {
    /// The S10 number (natural key).
    pub s10: String,
    /// Where it goes (loaded before).
    pub delivery_point: String,
    /// Signature, identity check, age check, cash on delivery.
    #[serde(default)]
    pub requirements: Requirements,
    /// The sender.
    #[serde(default)]
    pub sender: Option<String>,
    /// Arrival at the delivery office, RFC 3339 (UPU event EMG).
    pub arrived_at: String,
}

/// A pickup point or a post office.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlaceKind {
    /// A shop that holds parcels.
    PickupPoint,
    /// A post office.
    PostOffice,
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Weekday {
    /// Monday.
    Monday,
    /// Tuesday.
    Tuesday,
    /// Wednesday.
    Wednesday,
    /// Thursday.
    Thursday,
    /// Friday.
    Friday,
    /// Saturday.
    Saturday,
    /// Sunday.
    Sunday,
}

/// One opening period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Opening {
    /// The day.
    pub day: Weekday,
    /// `HH:MM`, local time.
    pub opens: String,
    /// `HH:MM`, after `opens`.
    pub closes: String,
}

/// A pickup point or post office.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PickupPointLine {
    /// Natural key.
    pub id: String,
    /// Which.
    pub kind: PlaceKind,
    /// Its name.
    pub name: String,
    /// Address lines.
    pub lines: Vec<String>,
    /// Postcode.
    pub postcode: String,
    /// Town.
    pub city: String,
    /// Where it is.
    #[serde(default)]
    pub pin: Option<GeoPoint>,
    /// Opening hours.
    #[serde(default)]
    pub opening_hours: Vec<Opening>,
}

/// One stop of a round line, in delivery order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StopLine {
    /// The delivery point (loaded before).
    pub delivery_point: String,
    /// The S10 numbers of its items (loaded before).
    #[serde(default)]
    pub items: Vec<String>,
}

/// A round for one day; published again during the day with items added, it replaces the stops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoundLine {
    /// Natural key.
    pub id: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    /// The delivery office.
    pub office: String,
    /// The postman.
    pub postman: String,
    /// The postman's devices (registered before), at least one.
    pub devices: Vec<String>,
    /// The stops, in delivery order.
    pub stops: Vec<StopLine>,
}

/// Whether a device may sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    /// Registered to its postman.
    Active,
    /// Refused from now on, for good.
    Revoked,
}

/// A postman's device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceLine {
    /// Natural key.
    pub id: String,
    /// The postman it is registered to.
    pub postman: String,
    /// `active` (the default) or `revoked`.
    #[serde(default = "active")]
    pub status: DeviceStatus,
}

fn active() -> DeviceStatus {
    DeviceStatus::Active
}

/// Any line of any kind (for the API's documentation).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum AnyLine {
    /// `delivery-points`
    DeliveryPoint(DeliveryPointLine),
    /// `customers`
    Customer(CustomerLine),
    /// `items`
    Item(ItemLine),
    /// `pickup-points`
    PickupPoint(PickupPointLine),
    /// `rounds`
    Round(RoundLine),
    /// `devices`
    Device(DeviceLine),
}

/// Why a line was refused: a stable code, the field as sent, and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRefusal {
    /// `not_json`, `invalid`, `unknown_reference`, …
    pub code: &'static str,
    /// The field at fault, as the line spells it (`stops[2].items[0]`).
    pub field: Option<String>,
    /// Why.
    pub message: String,
}

impl LineRefusal {
    /// A refusal of `field`.
    pub fn new(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            field: Some(field.into()),
            message: message.into(),
        }
    }

    fn rule(field: impl Into<String>, v: Violation) -> Self {
        Self::new("invalid", field, v.reason)
    }
}

/// A line parsed and checked on its own.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// See [`DeliveryPointLine`].
    DeliveryPoint(DeliveryPointLine),
    /// See [`CustomerLine`].
    Customer(CustomerLine),
    /// See [`ItemLine`], with its arrival in Unix milliseconds.
    Item(ItemLine, S10, i64),
    /// See [`PickupPointLine`].
    PickupPoint(PickupPointLine),
    /// See [`RoundLine`].
    Round(RoundLine),
    /// See [`DeviceLine`].
    Device(DeviceLine),
}

impl Line {
    /// The natural key.
    pub fn key(&self) -> String {
        match self {
            Line::DeliveryPoint(l) => l.id.clone(),
            Line::Customer(l) => l.id.clone(),
            Line::Item(_, s10, _) => s10.to_string(),
            Line::PickupPoint(l) => l.id.clone(),
            Line::Round(l) => l.id.clone(),
            Line::Device(l) => l.id.clone(),
        }
    }
}

/// Parses one line of `kind`: the line, and its canonical JSON.
pub fn parse(kind: Kind, text: &str) -> Result<(Line, String), LineRefusal> {
    fn json<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, LineRefusal> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                LineRefusal {
                    code: "not_json",
                    field: None,
                    message: format!(
                        "not a JSON object: {}",
                        without_position(&inner.to_string())
                    ),
                }
            } else {
                let field = match (field.as_str(), inner.to_string().split('`').nth(1)) {
                    ("." | "", Some(named)) => named.to_string(),
                    _ => field,
                };
                LineRefusal::new("invalid", field, without_position(&inner.to_string()))
            }
        })
    }
    let line = match kind {
        Kind::DeliveryPoints => Line::DeliveryPoint(json(text)?),
        Kind::Customers => Line::Customer(json(text)?),
        Kind::Items => {
            let line: ItemLine = json(text)?;
            let s10 = S10::parse(&line.s10).map_err(|v| LineRefusal::rule("s10", v))?;
            let arrived: jiff::Timestamp = line.arrived_at.parse().map_err(|_| {
                LineRefusal::new(
                    "invalid",
                    "arrived_at",
                    "an RFC 3339 time with its offset, e.g. 2026-12-04T06:30:00+01:00",
                )
            })?;
            Line::Item(line, s10, arrived.as_millisecond())
        }
        Kind::PickupPoints => Line::PickupPoint(json(text)?),
        Kind::Rounds => Line::Round(json(text)?),
        Kind::Devices => Line::Device(json(text)?),
    };
    check(&line)?;
    let canonical = match &line {
        Line::DeliveryPoint(l) => serde_json::to_string(l),
        Line::Customer(l) => serde_json::to_string(l),
        Line::Item(l, s10, arrived) => serde_json::to_string(&(l, s10.as_str(), arrived)),
        Line::PickupPoint(l) => serde_json::to_string(l),
        Line::Round(l) => serde_json::to_string(l),
        Line::Device(l) => serde_json::to_string(l),
    }
    .map_err(|e| LineRefusal::new("invalid", "", e.to_string()))?;
    Ok((line, canonical))
}

/// serde_json's message without its " at line 1 column 121": the report names the line.
fn without_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

const MAX_TEXT: usize = 120;

fn text(field: &str, value: &str, max: usize) -> Result<(), LineRefusal> {
    if value.trim().is_empty() {
        return Err(LineRefusal::new("invalid", field, "must not be empty"));
    }
    if value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(LineRefusal::new(
            "invalid",
            field,
            format!("at most {max} characters, no control characters"),
        ));
    }
    Ok(())
}

fn id(field: &str, value: &str) -> Result<(), LineRefusal> {
    rules::identifier(Field::EntryId, value).map_err(|v| LineRefusal::rule(field, v))
}

fn point_id(field: &str, value: &str) -> Result<(), LineRefusal> {
    tournee_sync_core::DocId::delivery_point(value)
        .map(|_| ())
        .map_err(|v| LineRefusal::rule(field, v))
}

fn clock_time(value: &str) -> Option<u32> {
    let (h, m) = value.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// The rules a line follows on its own.
fn check(line: &Line) -> Result<(), LineRefusal> {
    match line {
        Line::DeliveryPoint(l) => {
            point_id("id", &l.id)?;
            rules::reference_address(&reference(l, 1)).map_err(|v| {
                let field = v.field.as_str().to_string();
                LineRefusal::rule(field, v)
            })?;
            for (field, value) in [
                ("access.door_code", &l.access.door_code),
                ("access.floor", &l.access.floor),
                ("access.mailbox_position", &l.access.mailbox_position),
                ("access.notes", &l.access.notes),
            ] {
                if let Some(value) = value {
                    text(field, value, MAX_TEXT)?;
                }
            }
        }
        Line::Customer(l) => {
            id("id", &l.id)?;
            text("display_name", &l.display_name, MAX_TEXT)?;
            for (n, c) in l.contacts.iter().enumerate() {
                let field = format!("contacts[{n}].address");
                text(&field, &c.address, MAX_TEXT)?;
                if c.channel == Channel::Email && !c.address.contains('@') {
                    return Err(LineRefusal::new("invalid", field, "not an e-mail address"));
                }
            }
            for (n, p) in l.delivery_points.iter().enumerate() {
                point_id(&format!("delivery_points[{n}]"), p)?;
            }
        }
        Line::Item(l, _, _) => {
            point_id("delivery_point", &l.delivery_point)?;
            if let Some(sender) = &l.sender {
                text("sender", sender, MAX_TEXT)?;
            }
        }
        Line::PickupPoint(l) => {
            id("id", &l.id)?;
            text("name", &l.name, MAX_TEXT)?;
            if l.lines.is_empty() || l.lines.len() > 6 {
                return Err(LineRefusal::new("invalid", "lines", "1 to 6 address lines"));
            }
            for (n, line) in l.lines.iter().enumerate() {
                text(&format!("lines[{n}]"), line, 38)?;
            }
            text("postcode", &l.postcode, 10)?;
            text("city", &l.city, 38)?;
            if let Some(GeoPoint { lat, lon }) = l.pin {
                if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                    return Err(LineRefusal::new("invalid", "pin", "not a WGS 84 position"));
                }
            }
            for (n, o) in l.opening_hours.iter().enumerate() {
                let (opens, closes) = (clock_time(&o.opens), clock_time(&o.closes));
                let field = format!("opening_hours[{n}]");
                match (opens, closes) {
                    (None, _) => {
                        return Err(LineRefusal::new(
                            "invalid",
                            format!("{field}.opens"),
                            "HH:MM",
                        ))
                    }
                    (_, None) => {
                        return Err(LineRefusal::new(
                            "invalid",
                            format!("{field}.closes"),
                            "HH:MM",
                        ))
                    }
                    (Some(a), Some(b)) if a >= b => {
                        return Err(LineRefusal::new(
                            "invalid",
                            format!("{field}.closes"),
                            "closes after it opens",
                        ))
                    }
                    _ => {}
                }
            }
        }
        Line::Round(l) => {
            id("id", &l.id)?;
            rules::date(Field::Date, &l.date).map_err(|v| LineRefusal::rule("date", v))?;
            id("office", &l.office)?;
            id("postman", &l.postman)?;
            if l.devices.is_empty() {
                return Err(LineRefusal::new(
                    "invalid",
                    "devices",
                    "a round goes to at least one device",
                ));
            }
            for (n, d) in l.devices.iter().enumerate() {
                id(&format!("devices[{n}]"), d)?;
            }
            if l.stops.is_empty() {
                return Err(LineRefusal::new(
                    "invalid",
                    "stops",
                    "a round has at least one stop",
                ));
            }
            for (n, stop) in l.stops.iter().enumerate() {
                point_id(&format!("stops[{n}].delivery_point"), &stop.delivery_point)?;
                for (k, item) in stop.items.iter().enumerate() {
                    S10::parse(item)
                        .map_err(|v| LineRefusal::rule(format!("stops[{n}].items[{k}]"), v))?;
                }
            }
        }
        Line::Device(l) => {
            id("id", &l.id)?;
            id("postman", &l.postman)?;
        }
    }
    Ok(())
}

/// The reference address a delivery-point line publishes, at `version`.
pub fn reference(l: &DeliveryPointLine, version: u64) -> ReferenceAddress {
    ReferenceAddress {
        lines: l.lines.clone(),
        house_number: l.house_number.clone(),
        suffix: l.suffix,
        street: l.street.clone(),
        postcode: l.postcode.clone(),
        city: l.city.clone(),
        building: l.building.clone(),
        pin: l.pin,
        version,
    }
}
