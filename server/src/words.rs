//! Plain words, in French and English, for what a customer without an account reads: an item's
//! status, its UPU events, dates in the service's time zone, kinds of places and choices, opening
//! hours and why a choice is not possible. The public routes answer in these words (French unless
//! the client asks for English), so no screen shows a raw code.

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use schemars::JsonSchema;
use serde::Serialize;
use tournee_sync_core::model::Requirements;

/// A language the public answers speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    /// French, the default.
    Fr,
    /// English.
    En,
}

impl Lang {
    /// `fr` or `en`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    /// The language an `Accept-Language` header prefers among French and English (by quality,
    /// then order); French when it names neither or there is none.
    pub fn from_accept_language(header: Option<&str>) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for range in header.unwrap_or_default().split(',') {
            let mut parts = range.split(';');
            let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let lang = match tag.split('-').next() {
                Some("fr") => Lang::Fr,
                Some("en") => Lang::En,
                _ => continue,
            };
            if quality > 0.0 && best.is_none_or(|(q, _)| quality > q) {
                best = Some((quality, lang));
            }
        }
        best.map_or(Lang::Fr, |(_, lang)| lang)
    }

    fn pick(self, fr: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Fr => fr,
            Lang::En => en,
        }
    }
}

/// An item's status (`arrived_at_office`, `out_for_delivery`, `attempted`, `at_pickup_point`,
/// `delivered`) as a sentence.
pub fn status(lang: Lang, status: &str) -> &'static str {
    match status {
        "out_for_delivery" => lang.pick(
            "Votre envoi est en cours de livraison.",
            "Your item is out for delivery.",
        ),
        "attempted" => lang.pick(
            "Nous sommes passés, mais n'avons pas pu vous remettre votre envoi.",
            "We called, but could not hand your item over.",
        ),
        "at_pickup_point" => lang.pick(
            "Votre envoi vous attend au point de retrait.",
            "Your item is waiting for you at the pickup point.",
        ),
        "delivered" => lang.pick("Votre envoi a été livré.", "Your item has been delivered."),
        _ => lang.pick(
            "Votre envoi est arrivé à votre bureau de distribution.",
            "Your item has arrived at your delivery office.",
        ),
    }
}

/// What a delivery attempt's outcome means for the customer.
pub fn outcome(lang: Lang, code: &str) -> &'static str {
    match code {
        "addressee_absent" => lang.pick(
            "personne n'était présent, un avis de passage a été déposé",
            "nobody was in, so a notice was left",
        ),
        "refused" => lang.pick("l'envoi a été refusé", "the item was refused"),
        "address_incorrect" => lang.pick(
            "l'adresse est incomplète ou erronée",
            "the address is incomplete or wrong",
        ),
        "no_access" => lang.pick(
            "le facteur n'a pas pu accéder à votre porte",
            "the postman could not reach your door",
        ),
        "damaged" => lang.pick("l'envoi est endommagé", "the item is damaged"),
        "delivered_to_addressee" => lang.pick("remis en main propre", "handed to you"),
        "delivered_to_neighbour" => lang.pick("remis à un voisin", "left with a neighbour"),
        "delivered_to_safe_place" => lang.pick("déposé en lieu sûr", "left in a safe place"),
        "delivered_to_mailbox" => {
            lang.pick("déposé dans la boîte aux lettres", "put in the mailbox")
        }
        "delivered_to_pickup_point" => {
            lang.pick("déposé au point de retrait", "left at the pickup point")
        }
        _ => lang.pick(
            "l'envoi n'a pas pu être remis",
            "the item could not be handed over",
        ),
    }
}

/// A UPU event (`EMG`, `EDG`, `EMH`, `EDH`, `EMI`) as a sentence, with the non-delivery reason
/// of an EMH and the outcome a final delivery (EMI) records as its action.
pub fn event(lang: Lang, code: &str, reason: Option<&str>, action: Option<&str>) -> String {
    match code {
        "EDG" => lang
            .pick("En cours de livraison", "Out for delivery")
            .into(),
        "EMH" => {
            let why = outcome(lang, reason.unwrap_or_default());
            match lang {
                Lang::Fr => format!("Tentative de livraison : {why}"),
                Lang::En => format!("Delivery attempted: {why}"),
            }
        }
        "EDH" => lang
            .pick("Déposé au point de retrait", "Handed to the pickup point")
            .into(),
        "EMI" => {
            let how = action.filter(|a| a.starts_with("delivered_"));
            match (lang, how) {
                (Lang::Fr, Some(how)) => format!("Livré : {}", outcome(lang, how)),
                (Lang::En, Some(how)) => format!("Delivered: {}", outcome(lang, how)),
                _ => lang.pick("Livré", "Delivered").into(),
            }
        }
        _ => lang
            .pick(
                "Arrivé au bureau de distribution",
                "Arrived at the delivery office",
            )
            .into(),
    }
}

fn weekday(lang: Lang, day: Weekday) -> &'static str {
    let (fr, en) = match day {
        Weekday::Monday => ("lundi", "Monday"),
        Weekday::Tuesday => ("mardi", "Tuesday"),
        Weekday::Wednesday => ("mercredi", "Wednesday"),
        Weekday::Thursday => ("jeudi", "Thursday"),
        Weekday::Friday => ("vendredi", "Friday"),
        Weekday::Saturday => ("samedi", "Saturday"),
        Weekday::Sunday => ("dimanche", "Sunday"),
    };
    lang.pick(fr, en)
}

fn month(lang: Lang, month: i8) -> &'static str {
    const FR: [&str; 12] = [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ];
    const EN: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let i = usize::try_from(month.clamp(1, 12) - 1).unwrap_or(0);
    match lang {
        Lang::Fr => FR[i],
        Lang::En => EN[i],
    }
}

/// A day in words: "mardi 1er décembre 2026", "Tuesday 1 December 2026".
pub fn day(lang: Lang, date: Date) -> String {
    let name = weekday(lang, date.weekday());
    let month = month(lang, date.month());
    match lang {
        Lang::Fr if date.day() == 1 => format!("{name} 1er {month} {}", date.year()),
        Lang::Fr => format!("{name} {} {month} {}", date.day(), date.year()),
        Lang::En => format!("{name} {} {month} {}", date.day(), date.year()),
    }
}

/// A `YYYY-MM-DD` day in words; the text as given when it is not a day.
pub fn day_text(lang: Lang, date: &str) -> String {
    date.parse::<Date>()
        .map_or_else(|_| date.to_string(), |d| day(lang, d))
}

/// An instant in words, in the service's time zone: "mardi 1er décembre 2026 à 10 h 40",
/// "Tuesday 1 December 2026 at 10:40".
pub fn instant(lang: Lang, at: Timestamp, zone: &TimeZone) -> String {
    let local = at.to_zoned_datetime(zone.clone());
    let date = day(lang, local.date());
    match lang {
        Lang::Fr => format!("{date} à {} h {:02}", local.hour(), local.minute()),
        Lang::En => format!("{date} at {}:{:02}", local.hour(), local.minute()),
    }
}

/// A kind of place where an item waits (`post_office`, `pickup_point`, `locker`).
pub fn place_kind(lang: Lang, kind: &str) -> &'static str {
    match kind {
        "post_office" => lang.pick("bureau de poste", "post office"),
        "locker" => lang.pick("consigne automatique", "parcel locker"),
        _ => lang.pick("point de retrait", "pickup point"),
    }
}

/// A kind of choice (`redeliver_on`, `pickup_point`, `neighbour`, `safe_place`, `hold`), as the
/// option a customer picks.
pub fn choice_kind(lang: Lang, kind: &str) -> &'static str {
    match kind {
        "redeliver_on" => lang.pick(
            "Nouvelle livraison un autre jour",
            "Deliver again on another day",
        ),
        "pickup_point" => lang.pick("Livraison en point de retrait", "Take it to a pickup point"),
        "neighbour" => lang.pick("Remise à un voisin", "Leave it with a neighbour"),
        "safe_place" => lang.pick("Dépôt en lieu sûr", "Leave it in a safe place"),
        _ => lang.pick("Garder au bureau de poste", "Keep it at the post office"),
    }
}

/// A weekday of the opening hours (`monday`…), in words.
pub fn opening_day(lang: Lang, day: &str) -> &'static str {
    let named = match day {
        "monday" => Weekday::Monday,
        "tuesday" => Weekday::Tuesday,
        "wednesday" => Weekday::Wednesday,
        "thursday" => Weekday::Thursday,
        "friday" => Weekday::Friday,
        "saturday" => Weekday::Saturday,
        _ => Weekday::Sunday,
    };
    weekday(lang, named)
}

/// Why an item must be handed over in person, or `None` when it need not.
pub fn in_person_reason(lang: Lang, req: &Requirements) -> Option<String> {
    let mut needs = Vec::new();
    if req.signature {
        needs.push(lang.pick("une signature", "a signature"));
    }
    if req.id_check {
        needs.push(lang.pick("une pièce d'identité", "an identity check"));
    }
    if req.age_check {
        needs.push(lang.pick("un contrôle de l'âge", "an age check"));
    }
    if req.cash_on_delivery_cents.is_some() {
        needs.push(lang.pick("un paiement à la livraison", "payment on delivery"));
    }
    if needs.is_empty() {
        return None;
    }
    let and = lang.pick(" et ", " and ");
    Some(match lang {
        Lang::Fr => format!(
            "Cet envoi demande {} : il doit être remis en main propre, ni à un voisin ni en lieu sûr.",
            needs.join(and)
        ),
        Lang::En => format!(
            "This item needs {}: it must be handed over in person, not left with a neighbour or in a safe place.",
            needs.join(and)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_picks_french_unless_english_comes_first() {
        assert_eq!(Lang::from_accept_language(None), Lang::Fr);
        assert_eq!(Lang::from_accept_language(Some("de-DE")), Lang::Fr);
        assert_eq!(Lang::from_accept_language(Some("en-GB,en;q=0.9")), Lang::En);
        assert_eq!(
            Lang::from_accept_language(Some("fr;q=0.5, en-US;q=0.8")),
            Lang::En
        );
        assert_eq!(
            Lang::from_accept_language(Some("de, fr-FR;q=0.9, en;q=0.9")),
            Lang::Fr
        );
        assert_eq!(Lang::from_accept_language(Some("en;q=0, fr")), Lang::Fr);
    }

    #[test]
    fn dates_read_as_people_write_them() {
        let zone = TimeZone::get("Europe/Paris").unwrap_or_else(|e| panic!("{e}"));
        let at: Timestamp = "2026-12-01T09:40:00Z"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            instant(Lang::Fr, at, &zone),
            "mardi 1er décembre 2026 à 10 h 40"
        );
        assert_eq!(
            instant(Lang::En, at, &zone),
            "Tuesday 1 December 2026 at 10:40"
        );
        assert_eq!(day_text(Lang::Fr, "2026-12-08"), "mardi 8 décembre 2026");
    }
}
