//! Surveys: each queue's survey settings and every question asked after a resolve
//! (`survey_setting`, `survey`), and the `survey` timeline events that record what
//! happened to each, written in the same transaction as the row they describe.
//!
//! This module decides nothing about when or how to ask (that is the application's
//! `surveys` use case); it keeps a survey's status moving forward only: `waiting` →
//! `sent` → `answered`, `dropped` or `expired`, or straight to `not_sent`.

use serde::Serialize;
use serde_json::json;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use switchboard_core::{Direction, EventKind, Identity};

use crate::db::{RowExt, new_id};
use crate::error::{Result, StoreError};
use crate::reports::facts::record_event;
use crate::store::Store;
use crate::timeline::TimelineEvent;

/// What one queue asks when its conversations are resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SurveySetting {
    /// The queue.
    pub queue_id: String,
    /// What is asked, in order: `csat`, `ces`, `nps`; empty asks nothing.
    pub kinds: Vec<String>,
    /// One reminder this long after an unanswered question; `None` sends none.
    pub reminder_secs: Option<i64>,
    /// How long a question can be answered.
    pub expire_secs: i64,
    /// The approved template sent where a channel's messaging window is closed.
    pub template_name: Option<String>,
    /// Its language, e.g. `en_US`.
    pub template_language: Option<String>,
    /// Whether callers are offered the questions by DTMF when the agent hangs up.
    pub voice: bool,
    /// Last change, ms since the epoch.
    pub updated_at: i64,
}

/// One question to one customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SurveyRow {
    /// Survey id (UUID v7).
    pub id: String,
    /// The conversation it asks about.
    pub conversation_id: String,
    /// The customer.
    pub contact_id: String,
    /// `csat`, `ces` or `nps`.
    pub kind: String,
    /// Its place among the questions of one resolve (0 first).
    pub seq: i64,
    /// `text`, `card`, `link` or `dtmf`.
    pub mode: String,
    /// The channel it goes out on, e.g. `sms`.
    pub channel: String,
    /// The connector (or `webchat`, `voice`) that carries it.
    pub plugin_id: String,
    /// The customer address it goes to.
    pub identity: Option<Identity>,
    /// The agent who handled the conversation (answers are theirs).
    pub agent_id: Option<String>,
    /// The queue whose settings asked it.
    pub queue_id: Option<String>,
    /// `waiting`, `sent`, `answered`, `not_sent`, `dropped` or `expired`.
    pub status: String,
    /// Created, ms since the epoch.
    pub created_at: i64,
    /// Sent.
    pub sent_at: Option<i64>,
    /// Reminded.
    pub reminded_at: Option<i64>,
    /// Answered.
    pub answered_at: Option<i64>,
    /// No answer is taken after this.
    pub expires_at: i64,
    /// The answer's score.
    pub score: Option<i64>,
    /// Free-text feedback given with the answer.
    pub comment: Option<String>,
    /// Why it was not sent, dropped or expired.
    pub reason: Option<String>,
}

macro_rules! survey_columns {
    () => {
        "id, conversation_id, contact_id, kind, seq, mode, channel, plugin_id, identity_kind, \
         identity_value, agent_id, queue_id, status, created_at, sent_at, reminded_at, \
         answered_at, expires_at, score, comment, reason"
    };
}

impl SurveyRow {
    fn from_row(row: &AnyRow) -> Result<SurveyRow> {
        let identity = match (
            row.opt_text("identity_kind")?,
            row.opt_text("identity_value")?,
        ) {
            (Some(kind), Some(value)) => Some(Identity::from_normalized(kind, value)),
            _ => None,
        };
        Ok(SurveyRow {
            id: row.text("id")?,
            conversation_id: row.text("conversation_id")?,
            contact_id: row.text("contact_id")?,
            kind: row.text("kind")?,
            seq: row.int("seq")?,
            mode: row.text("mode")?,
            channel: row.text("channel")?,
            plugin_id: row.text("plugin_id")?,
            identity,
            agent_id: row.opt_text("agent_id")?,
            queue_id: row.opt_text("queue_id")?,
            status: row.text("status")?,
            created_at: row.int("created_at")?,
            sent_at: row.opt_int("sent_at")?,
            reminded_at: row.opt_int("reminded_at")?,
            answered_at: row.opt_int("answered_at")?,
            expires_at: row.int("expires_at")?,
            score: row.opt_int("score")?,
            comment: row.opt_text("comment")?,
            reason: row.opt_text("reason")?,
        })
    }

    /// A new question about `conversation_id`, `waiting` until it is sent.
    #[allow(clippy::too_many_arguments)]
    pub fn waiting(
        conversation_id: &str,
        contact_id: &str,
        kind: &str,
        seq: i64,
        mode: &str,
        (channel, plugin_id): (&str, &str),
        now_ms: i64,
        expires_at: i64,
    ) -> SurveyRow {
        SurveyRow {
            id: new_id(),
            conversation_id: conversation_id.to_owned(),
            contact_id: contact_id.to_owned(),
            kind: kind.to_owned(),
            seq,
            mode: mode.to_owned(),
            channel: channel.to_owned(),
            plugin_id: plugin_id.to_owned(),
            identity: None,
            agent_id: None,
            queue_id: None,
            status: "waiting".to_owned(),
            created_at: now_ms,
            sent_at: None,
            reminded_at: None,
            answered_at: None,
            expires_at,
            score: None,
            comment: None,
            reason: None,
        }
    }
}

/// Where a customer's answer came from: a message on a channel (with the provider's
/// id, so a provider's retry is not taken twice), the webchat card, the public page
/// or the keypad.
#[derive(Debug, Clone, Default)]
pub struct SurveyAnswer {
    /// The score.
    pub score: i64,
    /// Free-text feedback.
    pub comment: Option<String>,
    /// What the customer sent, as the timeline shows it.
    pub body: String,
    /// The provider's message id, when the answer was a message.
    pub provider_id: Option<String>,
    /// Where it was answered: `(channel, plugin_id)`; the survey's own by default.
    pub channel: Option<(String, String)>,
    /// When, ms since the epoch.
    pub now_ms: i64,
}

/// The timeline data of a survey event.
fn event_data(survey: &SurveyRow, phase: &str) -> serde_json::Value {
    json!({
        "survey": survey.kind,
        "phase": phase,
        "survey_id": survey.id,
        "mode": survey.mode,
        "agent_id": survey.agent_id,
    })
}

fn label(kind: &str) -> String {
    kind.to_uppercase()
}

async fn survey_in(conn: &mut AnyConnection, id: &str) -> Result<SurveyRow> {
    let row = sqlx::query(concat!(
        "SELECT ",
        survey_columns!(),
        " FROM survey WHERE id = $1"
    ))
    .bind(id.to_owned())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::not_found("survey", id))?;
    SurveyRow::from_row(&row)
}

async fn write_event(
    conn: &mut AnyConnection,
    survey: &SurveyRow,
    direction: Direction,
    body: String,
    data: serde_json::Value,
    at: i64,
) -> Result<TimelineEvent> {
    let mut event = TimelineEvent::new(
        &survey.contact_id,
        Some(&survey.conversation_id),
        direction,
        EventKind::Survey,
        crate::db::storable(&body),
        at,
    )
    .on_channel(&survey.channel, &survey.plugin_id);
    event.data = data;
    record_event(conn, &event).await?;
    Ok(event)
}

impl Store {
    /// The survey settings of `queue_id`, if it has any.
    pub async fn survey_setting(&self, queue_id: &str) -> Result<Option<SurveySetting>> {
        let mut conn = self.pool().acquire().await?;
        let row = sqlx::query(
            "SELECT queue_id, kinds, reminder_secs, expire_secs, template_name, \
             template_language, voice, updated_at FROM survey_setting WHERE queue_id = $1",
        )
        .bind(queue_id.to_owned())
        .fetch_optional(&mut *conn)
        .await?;
        row.map(|r| setting_from_row(&r)).transpose()
    }

    /// Every queue's survey settings, by queue id.
    pub async fn survey_settings(&self) -> Result<Vec<SurveySetting>> {
        let mut conn = self.pool().acquire().await?;
        let rows = sqlx::query(
            "SELECT queue_id, kinds, reminder_secs, expire_secs, template_name, \
             template_language, voice, updated_at FROM survey_setting ORDER BY queue_id",
        )
        .fetch_all(&mut *conn)
        .await?;
        rows.iter().map(setting_from_row).collect()
    }

    /// Replaces a queue's survey settings.
    pub async fn set_survey_setting(&self, s: &SurveySetting) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let kinds = format!(
            ",{}",
            s.kinds.iter().map(|k| format!("{k},")).collect::<String>()
        );
        sqlx::query(
            "INSERT INTO survey_setting (queue_id, kinds, reminder_secs, expire_secs, \
             template_name, template_language, updated_at, voice) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (queue_id) DO UPDATE SET kinds = $2, reminder_secs = $3, \
             expire_secs = $4, template_name = $5, template_language = $6, updated_at = $7, \
             voice = $8",
        )
        .bind(s.queue_id.clone())
        .bind(kinds)
        .bind(s.reminder_secs)
        .bind(s.expire_secs)
        .bind(s.template_name.clone())
        .bind(s.template_language.clone())
        .bind(s.updated_at)
        .bind(i64::from(s.voice))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The queue a conversation was last routed to (from the report facts, which keep
    /// every task), if it ever was.
    pub async fn conversation_queue(&self, conversation_id: &str) -> Result<Option<String>> {
        let mut conn = self.pool().acquire().await?;
        let row = sqlx::query(
            "SELECT queue_id FROM task_fact WHERE conversation_id = $1 \
             ORDER BY arrived_at DESC, task_id DESC LIMIT 1",
        )
        .bind(conversation_id.to_owned())
        .fetch_optional(&mut *conn)
        .await?;
        row.map(|r| r.text("queue_id")).transpose()
    }

    /// Records new questions (`waiting`; [`Store::survey_sent`] and
    /// [`Store::survey_not_sent`] move them on).
    pub async fn create_surveys(&self, rows: &[SurveyRow]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for s in rows {
            sqlx::query(concat!(
                "INSERT INTO survey (",
                survey_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                 $16, $17, $18, $19, $20, $21)"
            ))
            .bind(s.id.clone())
            .bind(s.conversation_id.clone())
            .bind(s.contact_id.clone())
            .bind(s.kind.clone())
            .bind(s.seq)
            .bind(s.mode.clone())
            .bind(s.channel.clone())
            .bind(s.plugin_id.clone())
            .bind(s.identity.as_ref().map(|i| i.kind().to_owned()))
            .bind(s.identity.as_ref().map(|i| i.value().to_owned()))
            .bind(s.agent_id.clone())
            .bind(s.queue_id.clone())
            .bind(s.status.clone())
            .bind(s.created_at)
            .bind(s.sent_at)
            .bind(s.reminded_at)
            .bind(s.answered_at)
            .bind(s.expires_at)
            .bind(s.score)
            .bind(s.comment.clone())
            .bind(s.reason.clone())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// One survey.
    pub async fn survey(&self, id: &str) -> Result<SurveyRow> {
        let mut conn = self.pool().acquire().await?;
        survey_in(&mut conn, id).await
    }

    /// A conversation's surveys, in the order they are asked.
    pub async fn conversation_surveys(&self, conversation_id: &str) -> Result<Vec<SurveyRow>> {
        let mut conn = self.pool().acquire().await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            survey_columns!(),
            " FROM survey WHERE conversation_id = $1 ORDER BY created_at, seq"
        ))
        .bind(conversation_id.to_owned())
        .fetch_all(&mut *conn)
        .await?;
        rows.iter().map(SurveyRow::from_row).collect()
    }

    /// The question in `mode` this customer address was last asked on `plugin_id` and
    /// may still answer at `now_ms`.
    pub async fn awaiting_survey(
        &self,
        identity: &Identity,
        plugin_id: &str,
        mode: &str,
        now_ms: i64,
    ) -> Result<Option<SurveyRow>> {
        let mut conn = self.pool().acquire().await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            survey_columns!(),
            " FROM survey WHERE identity_kind = $1 AND identity_value = $2 AND plugin_id = $3 \
             AND status = 'sent' AND mode = $4 AND expires_at > $5 \
             ORDER BY sent_at DESC, id DESC LIMIT 1"
        ))
        .bind(identity.kind().to_owned())
        .bind(identity.value().to_owned())
        .bind(plugin_id.to_owned())
        .bind(mode.to_owned())
        .bind(now_ms)
        .fetch_optional(&mut *conn)
        .await?;
        row.map(|r| SurveyRow::from_row(&r)).transpose()
    }

    /// Every question in `mode` this customer address may still answer at `now_ms`,
    /// oldest first (a webchat visitor's open rating card).
    pub async fn open_surveys_for(
        &self,
        identity: &Identity,
        mode: &str,
        now_ms: i64,
    ) -> Result<Vec<SurveyRow>> {
        let mut conn = self.pool().acquire().await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            survey_columns!(),
            " FROM survey WHERE identity_kind = $1 AND identity_value = $2 AND status = 'sent' \
             AND mode = $3 AND expires_at > $4 ORDER BY created_at, seq"
        ))
        .bind(identity.kind().to_owned())
        .bind(identity.value().to_owned())
        .bind(mode.to_owned())
        .bind(now_ms)
        .fetch_all(&mut *conn)
        .await?;
        rows.iter().map(SurveyRow::from_row).collect()
    }

    /// The question is on its way: its `sent` event joins the timeline.
    pub async fn survey_sent(
        &self,
        id: &str,
        now_ms: i64,
        detail: serde_json::Value,
    ) -> Result<(SurveyRow, TimelineEvent)> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE survey SET status = 'sent', sent_at = $1 WHERE id = $2 AND status = 'waiting'",
        )
        .bind(now_ms)
        .bind(id.to_owned())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Invalid(format!("survey {id} is not waiting")));
        }
        let survey = survey_in(&mut tx, id).await?;
        let mut data = event_data(&survey, "sent");
        if let (Some(data), serde_json::Value::Object(extra)) = (data.as_object_mut(), detail) {
            data.extend(extra);
        }
        let body = format!("{} survey sent on {}", label(&survey.kind), survey.channel);
        let event = write_event(&mut tx, &survey, Direction::Internal, body, data, now_ms).await?;
        tx.commit().await?;
        Ok((survey, event))
    }

    /// The question could not go out, and why (`reason` is a short code,
    /// `why` the sentence people read).
    pub async fn survey_not_sent(
        &self,
        id: &str,
        reason: &str,
        why: &str,
        now_ms: i64,
    ) -> Result<(SurveyRow, TimelineEvent)> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE survey SET status = 'not_sent', reason = $1 WHERE id = $2 AND status = 'waiting'",
        )
        .bind(reason.to_owned())
        .bind(id.to_owned())
        .execute(&mut *tx)
        .await?;
        let survey = survey_in(&mut tx, id).await?;
        let mut data = event_data(&survey, "not_sent");
        data["reason"] = json!(reason);
        data["why"] = json!(why);
        let body = format!("{} survey not sent: {why}", label(&survey.kind));
        let event = write_event(&mut tx, &survey, Direction::Internal, body, data, now_ms).await?;
        tx.commit().await?;
        Ok((survey, event))
    }

    /// The customer answered. `None` when the survey was not open for an answer any
    /// more (answered already, expired, dropped): the answer is not taken twice.
    pub async fn survey_answered(
        &self,
        id: &str,
        answer: SurveyAnswer,
    ) -> Result<Option<(SurveyRow, TimelineEvent)>> {
        let mut tx = self.begin_write().await?;
        let comment = answer.comment.as_deref().map(crate::db::storable);
        let done = sqlx::query(
            "UPDATE survey SET status = 'answered', answered_at = $1, score = $2, comment = $3 \
             WHERE id = $4 AND status = 'sent' AND expires_at > $1",
        )
        .bind(answer.now_ms)
        .bind(answer.score)
        .bind(comment.clone())
        .bind(id.to_owned())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let survey = survey_in(&mut tx, id).await?;
        let mut data = event_data(&survey, "answered");
        data["score"] = json!(answer.score);
        data["comment"] = json!(comment);
        let (channel, plugin) = answer
            .channel
            .clone()
            .unwrap_or_else(|| (survey.channel.clone(), survey.plugin_id.clone()));
        let mut event = TimelineEvent::new(
            &survey.contact_id,
            Some(&survey.conversation_id),
            Direction::In,
            EventKind::Survey,
            crate::db::storable(&answer.body),
            answer.now_ms,
        )
        .on_channel(&channel, &plugin);
        event.identity = survey.identity.clone();
        event.provider_id = answer.provider_id;
        event.data = data;
        record_event(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(Some((survey, event)))
    }

    /// The customer wrote something that is not an answer: the question is closed
    /// (`dropped`), and so are the ones waiting after it.
    pub async fn survey_dropped(&self, conversation_id: &str, now_ms: i64) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE survey SET status = 'dropped', reason = 'the customer wrote something else', \
             answered_at = NULL WHERE conversation_id = $1 AND status IN ('sent', 'waiting') \
             AND mode = 'text' AND created_at <= $2",
        )
        .bind(conversation_id.to_owned())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// A call's survey is over (the caller hung up, or gave no valid key): its
    /// questions still open are closed as `dropped` with `reason`, so nothing
    /// reminds or counts them as waiting. Returns how many were closed.
    pub async fn survey_call_over(&self, conversation_id: &str, reason: &str) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE survey SET status = 'dropped', reason = $1 WHERE conversation_id = $2 \
             AND status IN ('sent', 'waiting') AND mode = 'dtmf'",
        )
        .bind(reason.to_owned())
        .bind(conversation_id.to_owned())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Questions due for their one reminder at `now_ms`: sent, unanswered, not
    /// reminded, still open, and sent at least their queue's `reminder_secs` ago.
    pub async fn surveys_to_remind(&self, now_ms: i64) -> Result<Vec<SurveyRow>> {
        let mut conn = self.pool().acquire().await?;
        let rows = sqlx::query(
            "SELECT s.id, s.conversation_id, s.contact_id, s.kind, s.seq, s.mode, s.channel, \
             s.plugin_id, s.identity_kind, s.identity_value, s.agent_id, s.queue_id, s.status, \
             s.created_at, s.sent_at, s.reminded_at, s.answered_at, s.expires_at, s.score, \
             s.comment, s.reason FROM survey s JOIN survey_setting q ON q.queue_id = s.queue_id \
             WHERE s.status = 'sent' AND s.reminded_at IS NULL AND s.expires_at > $1 \
             AND s.mode IN ('text', 'link') AND q.reminder_secs IS NOT NULL \
             AND s.sent_at + q.reminder_secs * 1000 <= $1 ORDER BY s.sent_at, s.seq LIMIT 200",
        )
        .bind(now_ms)
        .fetch_all(&mut *conn)
        .await?;
        rows.iter().map(SurveyRow::from_row).collect()
    }

    /// Questions still open (`sent` or `waiting`) whose time to answer ran out by
    /// `now_ms` become `expired`, with why: a late reply is then an ordinary message,
    /// and nothing reminds or lists them as open. Returns how many expired.
    pub async fn surveys_expire(&self, now_ms: i64) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE survey SET status = 'expired', reason = 'no answer before the survey expired' \
             WHERE status IN ('sent', 'waiting') AND expires_at <= $1",
        )
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// A reminder went (or was given up): no other is sent.
    pub async fn survey_reminded(&self, id: &str, now_ms: i64) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done =
            sqlx::query("UPDATE survey SET reminded_at = $1 WHERE id = $2 AND reminded_at IS NULL")
                .bind(now_ms)
                .bind(id.to_owned())
                .execute(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
}

fn setting_from_row(row: &AnyRow) -> Result<SurveySetting> {
    Ok(SurveySetting {
        queue_id: row.text("queue_id")?,
        kinds: row
            .text("kinds")?
            .split(',')
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect(),
        reminder_secs: row.opt_int("reminder_secs")?,
        expire_secs: row.int("expire_secs")?,
        template_name: row.opt_text("template_name")?,
        template_language: row.opt_text("template_language")?,
        voice: row.int("voice")? != 0,
        updated_at: row.int("updated_at")?,
    })
}
