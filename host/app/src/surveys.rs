//! Surveys: after a resolve, the customer is asked what the conversation's queue asks
//! (CSAT, CES, NPS) on the channel they used last, and their answer is recorded.
//!
//! What is asked and how: on text channels (SMS, WhatsApp, Telegram and every other
//! connector) one question at a time, as a message the host sends through the outbox,
//! and the customer's reply is read by `switchboard_core::parse_answer`. A reply that
//! is not an answer stays a message (and closes the survey). Outside a messaging
//! window the queue's approved template goes instead, or the survey is recorded as
//! not sent, with why. Nothing is sent to an address that opted out, to a
//! conversation whose customer is a machine (auto-replies, bounces), or twice for the
//! same conversation. Calls are not asked after a resolve: where the queue offers it
//! (`voice`), the voice service's IVR asks the caller when the agent hangs up, keys
//! on the phone answering ([`Surveys::call_survey`]). See REPORTS.md, "Surveys".
//!
//! This module owns when and how to ask; the store owns the rows and the `survey`
//! timeline events (`switchboard_store::SurveyRow`), which the report facts read.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_core::{
    ConsentState, DeliveryStatus, Direction, EventKind, Identity, SurveyKind, parse_answer,
};
use switchboard_plugin_host::BoxFuture;
use switchboard_store::{
    IngestEvent, Store, StoreError, SurveyAnswer, SurveyRow, SurveySetting, is_automatic,
};

use crate::channels::{Channels, WEBCHAT_PLUGIN_ID};
use crate::clock::Clock;
use crate::compose::{ReplyContent, Template, WindowDecision, window_state};
use crate::desk::ResolveObserver;
use crate::error::{AppError, AppResult};
use crate::events::Audience;
use crate::ingest::AnswerCatcher;
use crate::notify::Notifier;
use crate::outbox::Outbox;
use crate::signing::{hmac_hex, same};

/// How long a question can be answered unless the queue says otherwise: 3 days.
pub const DEFAULT_EXPIRE_SECS: i64 = 3 * 24 * 3600;

/// How long a call's questions stay open: the caller answers on the line or never.
const CALL_SURVEY_OPEN_MS: i64 = 10 * 60 * 1000;

/// What an admin sets for a queue (`PUT /api/v1/queues/{id}/survey`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurveySettingsInput {
    /// What is asked, in order: `csat`, `ces`, `nps`; empty asks nothing.
    #[serde(default)]
    pub surveys: Vec<String>,
    /// One reminder this many seconds after an unanswered question (60 s – 7 days);
    /// none sends no reminder.
    #[serde(default)]
    pub reminder_secs: Option<i64>,
    /// How long a question can be answered (10 min – 30 days; default 3 days).
    #[serde(default)]
    pub expire_secs: Option<i64>,
    /// The approved template sent where the messaging window is closed.
    #[serde(default)]
    pub template: Option<TemplateName>,
    /// Offer the questions to callers by DTMF when the agent hangs up first.
    #[serde(default)]
    pub voice: bool,
}

/// A template by name and language.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateName {
    /// Its name as the provider approved it.
    pub name: String,
    /// Its language code (`en_US`).
    pub language: String,
}

/// A queue's settings as the API shows them (a queue without any asks nothing).
pub fn settings_json(queue_id: &str, setting: Option<&SurveySetting>) -> Value {
    match setting {
        Some(s) => json!({
            "queue_id": s.queue_id,
            "surveys": s.kinds,
            "reminder_secs": s.reminder_secs,
            "expire_secs": s.expire_secs,
            "template": s.template_name.as_ref().map(|name| json!({
                "name": name, "language": s.template_language,
            })),
            "voice": s.voice,
        }),
        None => json!({
            "queue_id": queue_id,
            "surveys": [],
            "reminder_secs": null,
            "expire_secs": DEFAULT_EXPIRE_SECS,
            "template": null,
            "voice": false,
        }),
    }
}

/// The survey use cases.
pub struct Surveys {
    store: Store,
    channels: Arc<Channels>,
    outbox: Arc<Outbox>,
    notifier: Notifier,
    clock: Clock,
    public_url: String,
    link_key: [u8; 32],
}

/// The public survey page of one conversation (`/survey/{token}`).
#[derive(Debug, Clone)]
pub struct SurveyPage {
    /// The questions, in order.
    pub questions: Vec<PageQuestion>,
    /// Whether every question is answered.
    pub done: bool,
}

/// One question of the public page.
#[derive(Debug, Clone)]
pub struct PageQuestion {
    /// `csat`, `ces` or `nps`.
    pub kind: SurveyKind,
    /// The score given, once answered.
    pub score: Option<i64>,
}

/// Why a question did not go out: a short code and the sentence people read.
struct NotSent {
    reason: &'static str,
    why: String,
}

impl Surveys {
    /// Surveys over these parts.
    /// Links to the public survey page start with `public_url`.
    pub fn new(
        store: Store,
        channels: Arc<Channels>,
        outbox: Arc<Outbox>,
        notifier: Notifier,
        clock: Clock,
        public_url: String,
    ) -> Surveys {
        Surveys {
            link_key: store.derived_key("survey-link"),
            store,
            channels,
            outbox,
            notifier,
            clock,
            public_url,
        }
    }

    /// The signed token of a conversation's survey page, valid until `expires`.
    pub fn link_token(&self, conversation_id: &str, expires: i64) -> String {
        let expires = expires.to_string();
        let sig = hmac_hex(
            &self.link_key,
            &[b"survey", conversation_id.as_bytes(), expires.as_bytes()],
        );
        format!("{conversation_id}.{expires}.{sig}")
    }

    /// The conversation a presented token names, if it is ours and not expired.
    fn check_token(&self, token: &str) -> AppResult<String> {
        let invalid = || AppError::forbidden("this survey link is not valid");
        let mut parts = token.rsplitn(3, '.');
        let (Some(sig), Some(expires), Some(conversation)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let expected = hmac_hex(
            &self.link_key,
            &[b"survey", conversation.as_bytes(), expires.as_bytes()],
        );
        if !same(&expected, sig) {
            return Err(invalid());
        }
        let expires: i64 = expires.parse().map_err(|_| invalid())?;
        if expires <= self.clock.now_ms() {
            return Err(AppError::new(
                crate::error::ErrorKind::Forbidden,
                "survey_expired",
                "this survey has closed; thank you all the same",
            ));
        }
        Ok(conversation.to_string())
    }

    /// The public page a survey link opens.
    pub async fn page(&self, token: &str) -> AppResult<SurveyPage> {
        let conversation = self.check_token(token)?;
        let questions: Vec<PageQuestion> = self
            .store
            .conversation_surveys(&conversation)
            .await?
            .into_iter()
            .filter(|s| s.mode == "link" && matches!(s.status.as_str(), "sent" | "answered"))
            .filter_map(|s| {
                Some(PageQuestion {
                    kind: s.kind.parse().ok()?,
                    score: s.score,
                })
            })
            .collect();
        if questions.is_empty() {
            return Err(AppError::not_found("there is no survey behind this link"));
        }
        let done = questions.iter().all(|q| q.score.is_some());
        Ok(SurveyPage { questions, done })
    }

    /// The public page's form: a score per open question (`csat=4`…) and an optional
    /// `comment`, kept with the first answer. Every problem is reported at once.
    pub async fn answer_page(
        &self,
        token: &str,
        form: &std::collections::HashMap<String, String>,
    ) -> AppResult<SurveyPage> {
        let conversation = self.check_token(token)?;
        let open: Vec<SurveyRow> = self
            .store
            .conversation_surveys(&conversation)
            .await?
            .into_iter()
            .filter(|s| s.mode == "link" && s.status == "sent")
            .collect();
        self.answer_form(&open, form, "survey page").await?;
        self.page(token).await
    }

    /// A queue's survey settings.
    pub async fn settings(&self, queue_id: &str) -> AppResult<Value> {
        self.known_queue(queue_id).await?;
        let setting = self.store.survey_setting(queue_id).await?;
        Ok(settings_json(queue_id, setting.as_ref()))
    }

    /// Every queue's survey settings.
    pub async fn all_settings(&self) -> AppResult<Value> {
        let settings = self.store.survey_settings().await?;
        let mut ids: Vec<String> = self
            .store
            .list_queues()
            .await?
            .into_iter()
            .map(|q| q.id)
            .collect();
        ids.extend(settings.iter().map(|s| s.queue_id.clone()));
        ids.sort();
        ids.dedup();
        let out: Vec<Value> = ids
            .iter()
            .map(|id| settings_json(id, settings.iter().find(|s| &s.queue_id == id)))
            .collect();
        Ok(json!({ "queues": out }))
    }

    /// Replaces a queue's survey settings on behalf of `admin_id`; every problem
    /// with the input is reported at once.
    pub async fn set_settings(
        &self,
        admin_id: &str,
        queue_id: &str,
        input: SurveySettingsInput,
    ) -> AppResult<Value> {
        self.known_queue(queue_id).await?;
        let setting = validate(queue_id, input, self.clock.now_ms())?;
        self.store.set_survey_setting(&setting).await?;
        let shown = settings_json(queue_id, Some(&setting));
        self.store
            .audit(admin_id, "survey.settings", Some(queue_id), shown.clone())
            .await?;
        Ok(shown)
    }

    /// Settings may name a queue before routing first creates it (queues come into
    /// being on first use), so only the name is checked.
    async fn known_queue(&self, queue_id: &str) -> AppResult<()> {
        if crate::routing::valid_queue_name(queue_id) {
            Ok(())
        } else {
            Err(AppError::bad_request(format!(
                "{queue_id:?} is not a queue name (1-64 letters, digits, `-`, `_`, `.`)"
            )))
        }
    }

    /// A conversation's surveys, in the order they were asked.
    pub async fn of_conversation(&self, conversation_id: &str) -> AppResult<Vec<SurveyRow>> {
        Ok(self.store.conversation_surveys(conversation_id).await?)
    }

    /// Records a form's answers (`csat=4`, `ces=6`, `comment=…`) to `open` questions:
    /// the comment goes with the first answer; every problem is reported at once.
    async fn answer_form(
        &self,
        open: &[SurveyRow],
        form: &std::collections::HashMap<String, String>,
        via: &str,
    ) -> AppResult<()> {
        let mut answers = Vec::new();
        let mut problems = Vec::new();
        for survey in open {
            let Ok(kind) = survey.kind.parse::<SurveyKind>() else {
                continue;
            };
            match form.get(kind.as_str()).map(|v| v.trim()) {
                None | Some("") => {}
                Some(v) => match v.parse::<i64>() {
                    Ok(score) if kind.accepts(score) => answers.push((survey, kind, score)),
                    _ => {
                        let (low, high) = kind.scale();
                        problems.push(format!(
                            "{}: choose a score from {low} to {high}",
                            kind.as_str().to_uppercase()
                        ))
                    }
                },
            }
        }
        if problems.is_empty() && answers.is_empty() && !open.is_empty() {
            problems.push("choose a score before sending".to_string());
        }
        if !problems.is_empty() {
            return Err(AppError::bad_request(problems.join("; ")));
        }
        let comment = form
            .get("comment")
            .map(|c| c.trim())
            .filter(|c| !c.is_empty())
            .map(|c| crate::text::text_field("comment", c))
            .transpose()?;
        for (i, (survey, kind, score)) in answers.into_iter().enumerate() {
            let comment = if i == 0 { comment.clone() } else { None };
            let label = kind.as_str().to_uppercase();
            let body = match &comment {
                Some(c) => format!("{label} {score} ({via}): {c}"),
                None => format!("{label} {score} ({via})"),
            };
            let answer = SurveyAnswer {
                score,
                comment,
                body,
                provider_id: None,
                channel: None,
                now_ms: self.clock.now_ms(),
            };
            self.answer(survey, answer).await?;
        }
        Ok(())
    }

    /// The rating card a webchat visitor has open (`{questions: [...]}`, empty when
    /// there is none).
    pub async fn card(&self, visitor: &Identity) -> AppResult<Value> {
        let open = self
            .store
            .open_surveys_for(visitor, "card", self.clock.now_ms())
            .await?;
        Ok(card_json(&open))
    }

    /// A webchat visitor's answers to their rating card (`csat` → `"4"`, `comment`).
    pub async fn answer_card(
        &self,
        visitor: &Identity,
        form: &std::collections::HashMap<String, String>,
    ) -> AppResult<Value> {
        let open = self
            .store
            .open_surveys_for(visitor, "card", self.clock.now_ms())
            .await?;
        if open.is_empty() {
            return Err(AppError::not_found("there is no survey to answer"));
        }
        self.answer_form(&open, form, "chat").await?;
        self.card(visitor).await
    }

    /// Webchat: every question at once, as a rating card pushed to the visitor's
    /// sockets (and read again with [`Surveys::card`] after a reload).
    async fn send_card(&self, rows: &[SurveyRow], setting: &SurveySetting) -> AppResult<()> {
        let now = self.clock.now_ms();
        if let Err(not_sent) = self.may_send(&rows[0], setting).await? {
            for row in rows {
                let (_, event) = self
                    .store
                    .survey_not_sent(&row.id, not_sent.reason, &not_sent.why, now)
                    .await?;
                self.notifier.timeline_event(&event);
            }
            return Ok(());
        }
        let mut sent = Vec::new();
        for row in rows {
            let (row, event) = self.store.survey_sent(&row.id, now, json!({})).await?;
            self.notifier.timeline_event(&event);
            sent.push(row);
        }
        if let Some(visitor) = &rows[0].identity {
            self.notifier.publish(
                "webchat.visitor",
                Audience::Visitor(visitor.value().to_string()),
                json!({"type": "survey", "survey": card_json(&sent)}),
            );
        }
        Ok(())
    }

    /// Sends the one reminder of every question that is due (see
    /// `Store::surveys_to_remind`): the question again on a text channel, the link
    /// again by e-mail. A reminder that may not go (the window closed, consent
    /// withdrawn) is given up, never retried. Returns how many went.
    pub async fn remind_due(&self) -> AppResult<usize> {
        let now = self.clock.now_ms();
        let mut sent = 0;
        let mut linked: Vec<String> = Vec::new();
        for survey in self.store.surveys_to_remind(now).await? {
            if !self.store.survey_reminded(&survey.id, now).await? {
                continue;
            }
            if survey.mode == "link" {
                // One e-mail per conversation, however many questions its page asks.
                if linked.contains(&survey.conversation_id) {
                    continue;
                }
                linked.push(survey.conversation_id.clone());
            }
            let Some(queue) = &survey.queue_id else {
                continue;
            };
            let Some(setting) = self.store.survey_setting(queue).await? else {
                continue;
            };
            let content = match self.may_send(&survey, &setting).await? {
                Ok(None) => {
                    let text = if survey.mode == "link" {
                        format!(
                            "A quick reminder: we would love to hear how we did. It takes a \
                             few seconds:\n\n{}/survey/{}",
                            self.public_url,
                            self.link_token(&survey.conversation_id, survey.expires_at)
                        )
                    } else {
                        let kind: SurveyKind = survey
                            .kind
                            .parse()
                            .map_err(|e: String| AppError::internal(e))?;
                        format!("A quick reminder: {}", kind.question())
                    };
                    ReplyContent::text(text)
                }
                // A template was sent once; a reminder outside the window is not worth
                // a second paid message.
                Ok(Some(_)) | Err(_) => {
                    tracing::info!(survey = %survey.id, "survey reminder given up");
                    continue;
                }
            };
            match self
                .outbox
                .host_message(&survey.conversation_id, content, Some(&survey.plugin_id))
                .await
            {
                Ok(_) => sent += 1,
                Err(e) => tracing::warn!(survey = %survey.id, "survey reminder refused: {e}"),
            }
        }
        Ok(sent)
    }

    /// Closes the questions still open whose time to answer ran out (`expired`,
    /// see `Store::surveys_expire`). Returns how many.
    pub async fn expire_due(&self) -> AppResult<u64> {
        let expired = self.store.surveys_expire(self.clock.now_ms()).await?;
        if expired > 0 {
            tracing::info!(expired, "survey questions expired unanswered");
        }
        Ok(expired)
    }

    /// Sends reminders as they fall due, and closes questions whose time to answer
    /// ran out (`expired`), until `shutdown` turns true.
    pub async fn run(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            if let Err(e) = self.remind_due().await {
                tracing::error!("survey reminders failed: {e}");
            }
            if let Err(e) = self.expire_due().await {
                tracing::error!("surveys not expired: {e}");
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(30)) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// After a resolve: asks what the queue asks, once per conversation. Failures are
    /// logged; a resolve never fails because of a survey.
    pub async fn on_resolved(&self, conversation_id: &str, queue_id: Option<&str>, agent_id: &str) {
        if let Err(e) = self.start(conversation_id, queue_id, agent_id).await {
            tracing::error!(conversation = conversation_id, "survey not started: {e}");
        }
    }

    async fn start(
        &self,
        conversation_id: &str,
        queue_id: Option<&str>,
        agent_id: &str,
    ) -> AppResult<()> {
        let queue = match queue_id {
            Some(q) => Some(q.to_string()),
            None => self.store.conversation_queue(conversation_id).await?,
        };
        let Some(queue) = queue else {
            return Ok(());
        };
        let Some(setting) = self.store.survey_setting(&queue).await? else {
            return Ok(());
        };
        let kinds = self.questions(&setting, conversation_id).await?;
        if kinds.is_empty() {
            return Ok(());
        }
        let conversation = self.store.conversation(conversation_id).await?;
        let Some(plugin_id) = conversation.last_plugin_id.clone() else {
            return Ok(());
        };
        if plugin_id == "voice" {
            // A call's survey is the IVR's, after the agent hangs up.
            return Ok(());
        }
        let mode = if plugin_id == WEBCHAT_PLUGIN_ID {
            "card"
        } else if self.plugin_is_mail(&plugin_id) {
            "link"
        } else {
            "text"
        };
        let info = self
            .channels
            .info(&plugin_id)
            .await
            .map_err(crate::error::call_error)?;
        let contact = self.store.contact(&conversation.contact_id).await?;
        let to = contact
            .latest_identity(&info.identity_kind)
            .map(|i| i.identity());
        let now = self.clock.now_ms();
        let expires = now + setting.expire_secs * 1000;
        let rows = Asking {
            conversation_id,
            contact_id: &conversation.contact_id,
            mode,
            channel: (&info.channel, &plugin_id),
            identity: to,
            agent_id,
            queue_id: &queue,
            open: (now, expires),
        }
        .rows(&kinds);
        self.store.create_surveys(&rows).await?;
        if mode == "link" {
            self.send_link(&rows, &setting).await
        } else if mode == "card" {
            self.send_card(&rows, &setting).await
        } else {
            self.ask(&rows[0], &setting).await
        }
    }

    /// The questions `setting` asks, in order; none when the conversation was
    /// surveyed already (once per conversation, whatever the channel).
    async fn questions(
        &self,
        setting: &SurveySetting,
        conversation_id: &str,
    ) -> AppResult<Vec<SurveyKind>> {
        let kinds: Vec<SurveyKind> = setting
            .kinds
            .iter()
            .filter_map(|k| k.parse().ok())
            .collect();
        if kinds.is_empty()
            || !self
                .store
                .conversation_surveys(conversation_id)
                .await?
                .is_empty()
        {
            return Ok(Vec::new());
        }
        Ok(kinds)
    }

    /// A call's post-call survey, when the queue's settings offer one to callers
    /// (`voice`): its questions, created `waiting` (mode `dtmf`, attributed to
    /// `agent_id`) for the IVR to ask one at a time with [`Surveys::call_asked`] and
    /// [`Surveys::call_answered`], and to close with [`Surveys::call_over`]. Empty
    /// when there is nothing to ask, or the conversation was surveyed already.
    pub async fn call_survey(
        &self,
        conversation_id: &str,
        queue_id: &str,
        agent_id: &str,
    ) -> AppResult<Vec<(SurveyRow, SurveyKind)>> {
        let Some(setting) = self.store.survey_setting(queue_id).await? else {
            return Ok(Vec::new());
        };
        if !setting.voice {
            return Ok(Vec::new());
        }
        let kinds = self.questions(&setting, conversation_id).await?;
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        let conversation = self.store.conversation(conversation_id).await?;
        let contact = self.store.contact(&conversation.contact_id).await?;
        let caller = contact.latest_identity("phone").map(|i| i.identity());
        let now = self.clock.now_ms();
        let rows = Asking {
            conversation_id,
            contact_id: &conversation.contact_id,
            mode: "dtmf",
            channel: ("voice", "voice"),
            identity: caller,
            agent_id,
            queue_id,
            // The caller answers on the line or not at all.
            open: (now, now + CALL_SURVEY_OPEN_MS),
        }
        .rows(&kinds);
        self.store.create_surveys(&rows).await?;
        Ok(rows.into_iter().zip(kinds).collect())
    }

    /// The IVR asks a call's question now: its `sent` event joins the timeline.
    pub async fn call_asked(&self, survey: &SurveyRow) -> AppResult<()> {
        let (_, event) = self
            .store
            .survey_sent(&survey.id, self.clock.now_ms(), json!({"via": "ivr"}))
            .await?;
        self.notifier.timeline_event(&event);
        Ok(())
    }

    /// The caller keyed `score` for a call's question (already checked against its
    /// scale); `keys` are the keys pressed, kept in the event's text.
    pub async fn call_answered(
        &self,
        survey: &SurveyRow,
        score: i64,
        keys: &str,
    ) -> AppResult<bool> {
        let label = survey.kind.to_uppercase();
        let answer = SurveyAnswer {
            score,
            comment: None,
            body: format!("{label} {score} (phone keypad: {keys})"),
            provider_id: None,
            channel: None,
            now_ms: self.clock.now_ms(),
        };
        self.answer(survey, answer).await
    }

    /// A call's survey is over: the questions not answered are closed as `dropped`
    /// with `reason` (the caller hung up, gave no valid key).
    pub async fn call_over(&self, conversation_id: &str, reason: &str) -> AppResult<u64> {
        Ok(self.store.survey_call_over(conversation_id, reason).await?)
    }

    /// E-mail: one message with a link to the public page, which asks every question.
    async fn send_link(&self, rows: &[SurveyRow], setting: &SurveySetting) -> AppResult<()> {
        let first = &rows[0];
        let now = self.clock.now_ms();
        let refused = match self.may_send(first, setting).await? {
            Err(not_sent) => Some((not_sent.reason, not_sent.why)),
            Ok(_) => {
                let link = format!(
                    "{}/survey/{}",
                    self.public_url,
                    self.link_token(&first.conversation_id, first.expires_at)
                );
                let body = format!(
                    "Thank you for contacting us. How did we do? It takes a few seconds, no \
                     login needed:\n\n{link}\n\nThe survey is open until {}.",
                    crate::clock::iso8601(first.expires_at)
                );
                match self
                    .outbox
                    .host_message(
                        &first.conversation_id,
                        ReplyContent::text(body),
                        Some(&first.plugin_id),
                    )
                    .await
                {
                    Ok((message, _)) => {
                        for row in rows {
                            let (_, event) = self
                                .store
                                .survey_sent(&row.id, now, json!({"message_event_id": message.id}))
                                .await?;
                            self.notifier.timeline_event(&event);
                        }
                        None
                    }
                    Err(e) => Some(("refused", e.message().to_string())),
                }
            }
        };
        if let Some((reason, why)) = refused {
            for row in rows {
                let (_, event) = self
                    .store
                    .survey_not_sent(&row.id, reason, &why, now)
                    .await?;
                self.notifier.timeline_event(&event);
            }
        }
        Ok(())
    }

    fn plugin_is_mail(&self, plugin_id: &str) -> bool {
        self.outbox.is_mail(plugin_id)
    }

    /// Sends one text question, or records why it was not sent.
    async fn ask(&self, survey: &SurveyRow, setting: &SurveySetting) -> AppResult<()> {
        let kind: SurveyKind = survey
            .kind
            .parse()
            .map_err(|e: String| AppError::internal(e))?;
        let content = match self.may_send(survey, setting).await? {
            Ok(content) => content,
            Err(not_sent) => {
                let (_, event) = self
                    .store
                    .survey_not_sent(
                        &survey.id,
                        not_sent.reason,
                        &not_sent.why,
                        self.clock.now_ms(),
                    )
                    .await?;
                self.notifier.timeline_event(&event);
                return Ok(());
            }
        };
        let content = content.unwrap_or_else(|| ReplyContent::text(kind.question()));
        let template = content.template.as_ref().map(|t| t.name.clone());
        let sent = self
            .outbox
            .host_message(&survey.conversation_id, content, Some(&survey.plugin_id))
            .await;
        let now = self.clock.now_ms();
        let (_, event) = match sent {
            Ok((message, _)) => {
                self.store
                    .survey_sent(
                        &survey.id,
                        now,
                        json!({"message_event_id": message.id, "template": template}),
                    )
                    .await?
            }
            Err(e) => {
                self.store
                    .survey_not_sent(&survey.id, "refused", e.message(), now)
                    .await?
            }
        };
        self.notifier.timeline_event(&event);
        Ok(())
    }

    /// Whether the question may go out now: `Ok(None)` as plain text, `Ok(Some)` as
    /// the queue's template (the window is closed), or why not.
    async fn may_send(
        &self,
        survey: &SurveyRow,
        setting: &SurveySetting,
    ) -> AppResult<Result<Option<ReplyContent>, NotSent>> {
        let Some(to) = &survey.identity else {
            return Ok(Err(NotSent {
                reason: "no_address",
                why: format!("the customer has no address on {}", survey.channel),
            }));
        };
        if self.store.consent_state(to, &survey.channel).await? == Some(ConsentState::OptedOut) {
            return Ok(Err(NotSent {
                reason: "no_consent",
                why: format!("{to} opted out of {}", survey.channel),
            }));
        }
        let timeline = self
            .store
            .conversation_timeline(&survey.conversation_id)
            .await?;
        let last_in = timeline
            .iter()
            .rev()
            .find(|e| e.direction == Direction::In && e.kind == EventKind::Message);
        if last_in.is_some_and(|e| e.data.get("metadata").is_some_and(is_automatic)) {
            return Ok(Err(NotSent {
                reason: "automatic",
                why: "the customer's last message was written by a machine".into(),
            }));
        }
        let last_out = timeline.iter().rev().find(|e| {
            e.direction == Direction::Out
                && e.kind == EventKind::Message
                && e.identity.as_ref() == Some(to)
        });
        if last_out.is_some_and(|e| e.delivery_status == Some(DeliveryStatus::Failed)) {
            return Ok(Err(NotSent {
                reason: "undeliverable",
                why: format!("the last message to {to} could not be delivered"),
            }));
        }
        let info = self
            .channels
            .info(&survey.plugin_id)
            .await
            .map_err(crate::error::call_error)?;
        let caps = &info.capabilities;
        let Some(window) = caps.window_secs else {
            return Ok(Ok(None));
        };
        // The customer's answer to an earlier question opened the window too.
        let last = self
            .store
            .last_inbound_at(&survey.conversation_id, &survey.plugin_id)
            .await?;
        let answered = timeline
            .iter()
            .filter(|e| e.direction == Direction::In && e.kind == EventKind::Survey)
            .map(|e| e.occurred_at)
            .max();
        let last = last.max(answered);
        let now = self.clock.now_ms();
        // A survey is not a person's reply: only the standard window counts.
        let state = window_state(last, window, None, now);
        if state.decision == Some(WindowDecision::Open) {
            return Ok(Ok(None));
        }
        let closed = match state.closed_at {
            Some(at) => format!(
                "the {} messaging window closed at {}",
                info.display_name,
                crate::clock::iso8601(at)
            ),
            None => format!("the customer has not written on {} yet", info.display_name),
        };
        match (
            &setting.template_name,
            &setting.template_language,
            caps.templates,
        ) {
            (Some(name), Some(language), true) => Ok(Ok(Some(ReplyContent {
                template: Some(Template {
                    name: name.clone(),
                    language: language.clone(),
                    parameters: Vec::new(),
                }),
                ..ReplyContent::default()
            }))),
            (_, _, true) => Ok(Err(NotSent {
                reason: "window_closed",
                why: format!(
                    "{closed} and queue {} has no survey template",
                    setting.queue_id
                ),
            })),
            (_, _, false) => Ok(Err(NotSent {
                reason: "window_closed",
                why: format!("{closed} and {} has no templates", info.display_name),
            })),
        }
    }

    /// Records an answer and asks the next question, if one is waiting.
    pub async fn answer(&self, survey: &SurveyRow, answer: SurveyAnswer) -> AppResult<bool> {
        let Some((survey, event)) = self.store.survey_answered(&survey.id, answer).await? else {
            return Ok(false);
        };
        self.notifier.timeline_event(&event);
        let next = self
            .store
            .conversation_surveys(&survey.conversation_id)
            .await?
            .into_iter()
            // A call's questions are asked by the IVR, not here.
            .find(|s| s.status == "waiting" && s.seq > survey.seq && s.mode == "text");
        if let Some(next) = next {
            let setting = match &survey.queue_id {
                Some(q) => self.store.survey_setting(q).await?,
                None => None,
            };
            if let Some(setting) = setting {
                self.ask(&next, &setting).await?;
            }
        }
        Ok(true)
    }

    /// Takes typed answers out of an inbound batch (see [`AnswerCatcher`]).
    async fn take_answers(
        &self,
        plugin_id: &str,
        events: Vec<IngestEvent>,
    ) -> Result<Vec<IngestEvent>, StoreError> {
        let mut keep = Vec::with_capacity(events.len());
        for event in events {
            if let IngestEvent::InboundMessage(m) = &event
                && !is_automatic(&m.metadata)
            {
                let now = self.clock.now_ms();
                // One read per message in the common case (nobody is being asked):
                // whether this is a provider's retry of a message already taken (the
                // store skips it) is asked only when a question awaits an answer.
                if let Some(survey) = self
                    .store
                    .awaiting_survey(&m.sender, plugin_id, "text", now)
                    .await?
                    && self
                        .store
                        .event_by_provider_id(plugin_id, &m.provider_id)
                        .await?
                        .is_none()
                {
                    let typed = survey
                        .kind
                        .parse::<SurveyKind>()
                        .ok()
                        .and_then(|kind| parse_answer(kind, &m.body));
                    match typed {
                        Some(typed) if m.attachments.is_empty() => {
                            let answer = SurveyAnswer {
                                score: typed.score,
                                comment: typed.comment,
                                body: m.body.clone(),
                                provider_id: Some(m.provider_id.clone()),
                                channel: None,
                                now_ms: now,
                            };
                            match self.answer(&survey, answer).await {
                                Ok(_) => continue,
                                Err(e) => return Err(StoreError::Invalid(e.to_string())),
                            }
                        }
                        _ => {
                            self.store
                                .survey_dropped(&survey.conversation_id, now)
                                .await?;
                        }
                    }
                }
            }
            keep.push(event);
        }
        Ok(keep)
    }
}

/// A rating card: each open question with its scale and the words at its ends.
fn card_json(open: &[SurveyRow]) -> Value {
    let questions: Vec<Value> = open
        .iter()
        .filter_map(|s| {
            let kind: SurveyKind = s.kind.parse().ok()?;
            let (low, high) = kind.scale();
            let (low_label, high_label) = kind.ends();
            Some(json!({
                "id": s.id,
                "kind": kind.as_str(),
                "prompt": kind.prompt(),
                "low": low,
                "high": high,
                "low_label": low_label,
                "high_label": high_label,
            }))
        })
        .collect();
    json!({ "questions": questions })
}

/// Checks an admin's settings, every problem at once.
fn validate(queue_id: &str, input: SurveySettingsInput, now: i64) -> AppResult<SurveySetting> {
    let mut problems = Vec::new();
    let mut kinds: Vec<String> = Vec::new();
    for name in &input.surveys {
        match name.parse::<SurveyKind>() {
            Ok(kind) if kinds.iter().any(|k| k == kind.as_str()) => {
                problems.push(format!("`surveys` names {kind} twice"))
            }
            Ok(kind) => kinds.push(kind.as_str().to_string()),
            Err(e) => problems.push(format!("`surveys`: {e}")),
        }
    }
    if let Some(r) = input.reminder_secs
        && !(60..=7 * 24 * 3600).contains(&r)
    {
        problems.push(format!(
            "`reminder_secs` is {r}; give 60 to 604800, or null for no reminder"
        ));
    }
    let expire = input.expire_secs.unwrap_or(DEFAULT_EXPIRE_SECS);
    if !(600..=30 * 24 * 3600).contains(&expire) {
        problems.push(format!("`expire_secs` is {expire}; give 600 to 2592000"));
    }
    if let Some(r) = input.reminder_secs
        && r >= expire
    {
        problems.push("`reminder_secs` must be shorter than `expire_secs`".to_string());
    }
    if let Some(t) = &input.template
        && (t.name.trim().is_empty() || t.language.trim().is_empty())
    {
        problems.push("`template` needs a `name` and a `language`".to_string());
    }
    if input.voice && kinds.is_empty() {
        problems.push("`voice` offers the questions in `surveys`; name at least one".to_string());
    }
    if !problems.is_empty() {
        return Err(AppError::bad_request(problems.join("; ")));
    }
    Ok(SurveySetting {
        queue_id: queue_id.to_string(),
        kinds,
        reminder_secs: input.reminder_secs,
        expire_secs: expire,
        template_name: input.template.as_ref().map(|t| t.name.trim().to_string()),
        template_language: input
            .template
            .as_ref()
            .map(|t| t.language.trim().to_string()),
        voice: input.voice,
        updated_at: now,
    })
}

impl ResolveObserver for Surveys {
    fn resolved<'a>(
        &'a self,
        conversation_id: &'a str,
        queue_id: Option<&'a str>,
        agent_id: &'a str,
    ) -> BoxFuture<'a, ()> {
        Box::pin(self.on_resolved(conversation_id, queue_id, agent_id))
    }
}

impl AnswerCatcher for Surveys {
    fn take<'a>(
        &'a self,
        plugin_id: &'a str,
        events: Vec<IngestEvent>,
    ) -> BoxFuture<'a, Result<Vec<IngestEvent>, StoreError>> {
        Box::pin(self.take_answers(plugin_id, events))
    }
}

/// Who is asked what, where and for whom: the rows of one survey, one per question.
struct Asking<'a> {
    conversation_id: &'a str,
    contact_id: &'a str,
    mode: &'a str,
    /// Channel and plugin id.
    channel: (&'a str, &'a str),
    /// The address asked.
    identity: Option<Identity>,
    /// The agent the answers count for.
    agent_id: &'a str,
    queue_id: &'a str,
    /// Created at and expiring at, ms.
    open: (i64, i64),
}

impl Asking<'_> {
    /// One `waiting` row per question, in the order asked.
    fn rows(&self, kinds: &[SurveyKind]) -> Vec<SurveyRow> {
        kinds
            .iter()
            .enumerate()
            .map(|(seq, kind)| {
                let mut row = SurveyRow::waiting(
                    self.conversation_id,
                    self.contact_id,
                    kind.as_str(),
                    seq as i64,
                    self.mode,
                    self.channel,
                    self.open.0,
                    self.open.1,
                );
                row.identity = self.identity.clone();
                row.agent_id = Some(self.agent_id.to_string());
                row.queue_id = Some(self.queue_id.to_string());
                row
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_all_at_once() {
        let err = validate(
            "support",
            SurveySettingsInput {
                surveys: vec!["csat".into(), "csat".into(), "nss".into()],
                reminder_secs: Some(10),
                expire_secs: Some(60),
                template: Some(TemplateName {
                    name: " ".into(),
                    language: "en".into(),
                }),
                voice: false,
            },
            0,
        )
        .unwrap_err();
        let message = err.message();
        for part in [
            "names csat twice",
            "unknown survey \"nss\"",
            "`reminder_secs` is 10",
            "`expire_secs` is 60",
            "needs a `name`",
        ] {
            assert!(message.contains(part), "{part} in {message}");
        }
        let err = validate(
            "support",
            SurveySettingsInput {
                surveys: vec!["csat".into()],
                reminder_secs: Some(7200),
                expire_secs: Some(3600),
                template: None,
                voice: false,
            },
            0,
        )
        .unwrap_err();
        assert!(err.message().contains("shorter than `expire_secs`"));
        let ok = validate(
            "support",
            SurveySettingsInput {
                surveys: vec!["ces".into(), "csat".into()],
                reminder_secs: Some(3600),
                ..Default::default()
            },
            5,
        )
        .unwrap();
        assert_eq!(ok.kinds, vec!["ces", "csat"]);
        assert_eq!(ok.expire_secs, DEFAULT_EXPIRE_SECS);
        assert_eq!(ok.updated_at, 5);
        assert!(!ok.voice, "calls are not surveyed unless asked");
        let err = validate(
            "support",
            SurveySettingsInput {
                voice: true,
                ..Default::default()
            },
            0,
        )
        .unwrap_err();
        assert!(err.message().contains("`voice` offers the questions"));
    }
}
