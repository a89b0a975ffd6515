//! Plain words, in French and English, for what a customer without an account reads: an item's
//! status, its UPU events, dates in the service's time zone, kinds of places and choices, opening
//! hours and why a choice is not possible. The public routes answer in these words (French unless
//! the client asks for English), so no screen shows a raw code. The back-office page reads the
//! same words, with a reviewer's ones beside them ([`catalogue`]), and refusals' messages are
//! put in the request's language here too ([`refusal`]).

use std::collections::BTreeMap;

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
        Lang::named_in(header).unwrap_or(Lang::Fr)
    }

    /// The language an `Accept-Language` header prefers among French and English (by quality,
    /// then order); `None` when it names neither or there is none.
    pub fn named_in(header: Option<&str>) -> Option<Lang> {
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
        best.map(|(_, lang)| lang)
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

/// A UPU event (`EMG`, `EDG`, `EMH`, `EDH`, `EMI`) by its name alone.
pub fn event_name(lang: Lang, code: &str) -> &'static str {
    match code {
        "EDG" => lang.pick("En cours de livraison", "Out for delivery"),
        "EMH" => lang.pick("Tentative de livraison", "Delivery attempted"),
        "EDH" => lang.pick("Déposé au point de retrait", "Handed to the pickup point"),
        "EMI" => lang.pick("Livré", "Delivered"),
        _ => lang.pick(
            "Arrivé au bureau de distribution",
            "Arrived at the delivery office",
        ),
    }
}

/// A UPU event (`EMG`, `EDG`, `EMH`, `EDH`, `EMI`) as a sentence, with the non-delivery reason
/// of an EMH and the outcome a final delivery (EMI) records as its action.
pub fn event(lang: Lang, code: &str, reason: Option<&str>, action: Option<&str>) -> String {
    match code {
        "EMH" => {
            let why = outcome(lang, reason.unwrap_or_default());
            match lang {
                Lang::Fr => format!("Tentative de livraison : {why}"),
                Lang::En => format!("Delivery attempted: {why}"),
            }
        }
        "EMI" => {
            let how = action.filter(|a| a.starts_with("delivered_"));
            match (lang, how) {
                (Lang::Fr, Some(how)) => format!("Livré : {}", outcome(lang, how)),
                (Lang::En, Some(how)) => format!("Delivered: {}", outcome(lang, how)),
                _ => event_name(lang, code).into(),
            }
        }
        _ => event_name(lang, code).into(),
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

/// Every delivery attempt's outcome code.
const OUTCOMES: [&str; 11] = [
    "delivered_to_addressee",
    "delivered_to_neighbour",
    "delivered_to_safe_place",
    "delivered_to_mailbox",
    "delivered_to_pickup_point",
    "addressee_absent",
    "refused",
    "address_incorrect",
    "no_access",
    "damaged",
    "other",
];

/// An outcome as a reviewer reads it (the customer's words speak to the addressee).
pub fn outcome_for_reviewer(lang: Lang, code: &str) -> &'static str {
    match code {
        "delivered_to_addressee" => lang.pick("remis au destinataire", "handed to the addressee"),
        // Where it was left reads the same for both.
        "delivered_to_neighbour"
        | "delivered_to_safe_place"
        | "delivered_to_mailbox"
        | "delivered_to_pickup_point" => outcome(lang, code),
        "addressee_absent" => lang.pick(
            "destinataire absent, avis de passage déposé",
            "addressee absent, notice left",
        ),
        "refused" => lang.pick("refusé par le destinataire", "refused by the addressee"),
        "address_incorrect" => lang.pick(
            "adresse incomplète ou erronée",
            "address incomplete or wrong",
        ),
        "no_access" => lang.pick("porte inaccessible", "no access to the door"),
        "damaged" => lang.pick("envoi endommagé", "item damaged"),
        _ => lang.pick("autre motif", "another reason"),
    }
}

/// An item's status code in a few words, for a list.
fn status_name(lang: Lang, status: &str) -> &'static str {
    match status {
        "out_for_delivery" => lang.pick("en cours de livraison", "out for delivery"),
        "attempted" => lang.pick("tentative de livraison", "delivery attempted"),
        "at_pickup_point" => lang.pick("au point de retrait", "at the pickup point"),
        "delivered" => lang.pick("livré", "delivered"),
        _ => lang.pick("au bureau de distribution", "at the delivery office"),
    }
}

/// The groups of the catalogue that are plain lists: by group, each code in French and English.
/// A code with its French and English words.
type Words = (&'static str, &'static str, &'static str);

const LISTS: [(&str, &[Words]); 4] = [
    (
        "queue_kinds",
        &[
            ("correction", "Correction d'adresse", "Address correction"),
            ("attempt", "Tentative signalée", "Flagged attempt"),
            ("dispute", "Contestation", "Dispute"),
        ],
    ),
    (
        "entry_statuses",
        &[
            ("open", "à décider", "to decide"),
            ("approved", "approuvée", "approved"),
            ("rejected", "rejetée", "rejected"),
            ("closed", "close", "closed"),
        ],
    ),
    (
        "fields",
        &[
            ("house_number", "numéro", "house number"),
            ("suffix", "complément (bis, ter)", "suffix (bis, ter)"),
            ("street", "voie", "street"),
            ("building", "bâtiment", "building"),
            ("floor", "étage", "floor"),
            ("door_code", "code de porte", "door code"),
            ("mailbox_position", "boîte aux lettres", "mailbox"),
            ("pin", "repère sur la carte", "map pin"),
            ("note", "note", "note"),
        ],
    ),
    (
        "reasons",
        &[
            (
                "far_from_pin",
                "enregistrée à {distance} m du repère de l'adresse",
                "recorded {distance} m from the address's pin",
            ),
            (
                "notice_without_number",
                "avis de passage déposé sans numéro d'avis",
                "a notice was left without a notice number",
            ),
            (
                "notice_without_place",
                "avis de passage déposé sans lieu de retrait",
                "a notice was left without saying where to collect the item",
            ),
            (
                "flagged",
                "tentative signalée à la vérification",
                "attempt flagged for review",
            ),
            (
                "correction_proposed",
                "{postman} propose une correction : la référence ne change qu'une fois approuvée",
                "{postman} proposes a correction: reference data changes only once approved",
            ),
            (
                "disputed",
                "le client conteste cette tentative",
                "the customer disputes this attempt",
            ),
        ],
    ),
];

/// Everything the back-office page shows of a code, by group and code, in `lang`: outcomes,
/// UPU events, item statuses, kinds of places and choices, queue kinds and statuses, the fields
/// of a correction and why an entry is queued (templates with `{distance}`, `{postman}`). The
/// page holds only its own labels; every word about the domain comes from here.
pub fn catalogue(lang: Lang) -> BTreeMap<&'static str, BTreeMap<&'static str, String>> {
    fn group<'a>(
        codes: impl IntoIterator<Item = &'a &'static str>,
        words: impl Fn(&str) -> String,
    ) -> BTreeMap<&'static str, String> {
        codes.into_iter().map(|c| (*c, words(c))).collect()
    }
    let pairs = |list: &[Words]| {
        list.iter()
            .map(|(code, fr, en)| (*code, lang.pick(fr, en).to_string()))
            .collect::<BTreeMap<_, _>>()
    };
    let mut all = BTreeMap::new();
    all.insert(
        "outcomes",
        group(&OUTCOMES, |c| outcome_for_reviewer(lang, c).into()),
    );
    all.insert(
        "events",
        group(&["EMG", "EDG", "EMH", "EDH", "EMI"], |c| {
            event_name(lang, c).into()
        }),
    );
    all.insert(
        "statuses",
        group(
            &[
                "arrived_at_office",
                "out_for_delivery",
                "attempted",
                "at_pickup_point",
                "delivered",
            ],
            |c| status_name(lang, c).into(),
        ),
    );
    all.insert(
        "place_kinds",
        group(&["post_office", "pickup_point", "locker"], |c| {
            place_kind(lang, c).into()
        }),
    );
    all.insert(
        "choice_kinds",
        group(
            &[
                "redeliver_on",
                "pickup_point",
                "neighbour",
                "safe_place",
                "hold",
            ],
            |c| choice_kind(lang, c).into(),
        ),
    );
    for (group, list) in LISTS {
        all.insert(group, pairs(list));
    }
    all
}

/// A refusal's message for a person, in `lang`: English as the handler wrote it (with its
/// details), French from its code and the field it names.
pub fn refusal(lang: Lang, code: &str, field: Option<&str>, english: &str) -> String {
    let fr = match lang {
        Lang::En => return english.to_string(),
        Lang::Fr => refusal_fr(code, field),
    };
    match field {
        Some(field) => format!("{field} : {fr}"),
        None => fr.to_string(),
    }
}

/// A refusal in French, by its code (and, for a broken rule, its field).
fn refusal_fr(code: &str, field: Option<&str>) -> &'static str {
    match (code, field) {
        ("no_match", _) => "aucun envoi ne correspond à ce numéro et ce code postal : vérifiez les deux tels qu'ils sont imprimés sur l'avis de passage ou dans le message de l'expéditeur",
        ("invalid_s10", _) => "ce n'est pas un numéro de suivi : 13 caractères, deux lettres, neuf chiffres et deux lettres (ex. RR123456785FR)",
        ("invalid_notice_number", _) => "ce n'est pas un numéro d'avis de passage : 4 à 32 lettres et chiffres",
        ("invalid_postcode", _) => "ce n'est pas un code postal : cinq chiffres",
        ("invalid_parameter", _) => "ce paramètre n'a pas la forme attendue ; voir /openapi.json",
        ("missing_parameter", _) => "un paramètre manque ; voir /openapi.json",
        ("item_not_found", _) => "cet envoi n'est pas parmi les vôtres",
        ("delivery_point_not_found", _) => "cette adresse n'est pas parmi les vôtres",
        ("attempt_not_found", _) => "cette tentative de livraison n'existe pas pour cet envoi",
        ("already_delivered", _) => "cet envoi a déjà été livré : il n'y a plus de choix à faire",
        ("already_disputed", _) => "cette tentative est déjà contestée",
        ("date_in_the_past", _) => "ce jour est déjà passé",
        ("beyond_holding_period", _) => "ce jour est après la fin de la période de garde",
        ("unknown_pickup_point", _) => "ce point de retrait n'existe pas ; voir /v1/pickup-points",
        ("rule_violation", Some("choice")) => "cet envoi demande une signature, une pièce d'identité, un contrôle de l'âge ou un paiement : il doit être remis en main propre, ni à un voisin ni en lieu sûr",
        ("rule_violation", Some("date" | "choice.date")) => "ce n'est pas un jour du calendrier écrit AAAA-MM-JJ",
        ("rule_violation", Some("comment")) => "dites ce qui s'est passé, par exemple « j'étais chez moi »",
        ("rule_violation", _) => "cette valeur n'est pas acceptée : vérifiez-la",
        ("invalid_field", _) => "ce champ n'a pas la forme attendue ; voir /openapi.json",
        ("invalid_body", _) => "le corps de la requête n'a pas la forme attendue ; voir /openapi.json",
        ("not_json", _) => "le corps de la requête n'est pas du JSON",
        ("unreadable_body", _) => "le corps de la requête n'a pas pu être lu jusqu'au bout",
        ("body_too_large", _) => "le corps de la requête dépasse la taille permise",
        ("request_timeout", _) => "la requête n'est pas arrivée à temps : envoyez-la de nouveau",
        ("rate_limited", _) => "trop de requêtes depuis votre connexion : réessayez dans une minute",
        ("busy", _) => "le service est très demandé : réessayez dans un instant",
        ("token_missing", _) => "il manque le jeton : en-tête Authorization: Bearer",
        ("token_malformed", _) => "l'en-tête Authorization doit être « Bearer <jeton> »",
        ("token_expired", _) => "ce jeton a expiré : connectez-vous de nouveau",
        (c, _) if c.starts_with("token_") => "ce jeton n'est pas valable",
        ("wrong_role", _) => "ce jeton ne donne pas accès à cette route",
        ("route_not_found", _) => "cette route n'existe pas",
        ("method_not_allowed", _) => "cette route n'accepte pas cette méthode ; voir /openapi.json",
        ("unsupported_media_type", _) => "type de contenu non pris en charge",
        ("document_not_found" | "not_found", _) => "introuvable",
        ("refused_by_validator", _) => "cette modification n'est pas permise",
        ("unavailable" | "internal", _) => "le service n'a pas pu répondre : réessayez plus tard",
        _ => "la demande a été refusée",
    }
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
    fn refusals_speak_french_from_their_code_and_english_as_written() {
        assert_eq!(
            refusal(Lang::Fr, "date_in_the_past", Some("choice.date"), "date: x"),
            "choice.date : ce jour est déjà passé"
        );
        assert_eq!(
            refusal(Lang::En, "date_in_the_past", Some("choice.date"), "date: x"),
            "date: x"
        );
        assert!(refusal(Lang::Fr, "no_match", None, "").starts_with("aucun envoi"));
    }

    #[test]
    fn the_catalogue_has_the_same_codes_in_both_languages() {
        let (fr, en) = (catalogue(Lang::Fr), catalogue(Lang::En));
        for (group, words) in &fr {
            let codes: Vec<_> = words.keys().collect();
            assert_eq!(codes, en[group].keys().collect::<Vec<_>>(), "{group}");
        }
        assert_eq!(
            fr["outcomes"]["addressee_absent"],
            "destinataire absent, avis de passage déposé"
        );
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
