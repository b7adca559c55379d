//! The post-call survey: when the agent hangs up first on an inbound call whose queue
//! offers it (`voice` in the queue's survey settings), the caller stays on the line
//! and the IVR asks the queue's questions, one key each (REPORTS.md, "Surveys").
//!
//! The call itself ends when the agent hangs up: its record, its task (wrap-up) and
//! the agent are done with it, and the survey time counts in none of them. What is
//! asked and recorded belongs to the survey engine (`switchboard_app::surveys`):
//! this module only plays the prompts, reads the keys and hangs up. It never keeps a
//! caller longer than two tries per question.

use std::sync::Arc;
use std::time::Duration;

use switchboard_core::SurveyKind;
use switchboard_store::SurveyRow;
use tokio::sync::{mpsc, oneshot};

use crate::media::MediaCommand;
use crate::service::{CallState, VoiceService};
use crate::ua::{self, SipLeg};

/// How long the caller has to press a key once a question has been asked.
const KEY_TIMEOUT: Duration = Duration::from_secs(6);

/// Tries per question: a missing or invalid key asks once more.
const TRIES: usize = 2;

/// Why a call's open questions were closed.
const CALLER_LEFT: &str = "the caller hung up during the survey";
const NO_KEY: &str = "the caller pressed no valid key";

impl VoiceService {
    /// The agent's hang-up: the post-call survey when the call's queue offers it
    /// (the caller is not hung up on), else the call ends with a BYE as before.
    pub async fn agent_hang_up(self: &Arc<Self>, call_id: &str) {
        let eligible = self
            .with_call(call_id, |c| {
                let talking = c.inbound
                    && c.consult.is_none()
                    && matches!(c.state, CallState::Connected | CallState::Held);
                match (talking, &c.conversation_id, &c.queue, &c.agent_id) {
                    (true, Some(conv), Some(queue), Some(agent)) => {
                        Some((conv.clone(), queue.clone(), agent.clone()))
                    }
                    _ => None,
                }
            })
            .flatten();
        if let Some((conversation, queue, agent)) = eligible {
            match self
                .state
                .surveys
                .call_survey(&conversation, &queue, &agent)
                .await
            {
                Ok(questions) if !questions.is_empty() => {
                    self.start_survey(call_id, conversation, questions).await;
                    return;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(call = call_id, "post-call survey not started: {e}")
                }
            }
        }
        self.hang_up(call_id, "answered").await;
    }

    /// Ends the call but keeps the caller's line, and asks the questions.
    async fn start_survey(
        self: &Arc<Self>,
        call_id: &str,
        conversation: String,
        questions: Vec<(SurveyRow, SurveyKind)>,
    ) {
        let Some((dialog, media)) =
            self.with_call(call_id, |c| (c.sip.call_id.clone(), c.media.clone()))
        else {
            return;
        };
        // On the survey line before the call ends, so that a BYE from the caller
        // finds one or the other.
        self.surveying
            .lock()
            .expect("surveying")
            .insert(dialog.clone(), media);
        let Some((leg, media)) = self.finish_call(call_id, Some("answered"), true).await else {
            // The caller hung up meanwhile: nothing to ask.
            self.leave_survey_line(&dialog);
            let _ = self
                .state
                .surveys
                .call_over(&conversation, CALLER_LEFT)
                .await;
            return;
        };
        tokio::spawn(
            self.clone()
                .run_survey(dialog, leg, media, conversation, questions),
        );
    }

    /// Asks each question (a prompt, one key, a second try if the key is missing or
    /// off the scale), then thanks the caller and hangs up. A caller who hangs up
    /// keeps the answers given so far.
    async fn run_survey(
        self: Arc<Self>,
        dialog: String,
        leg: SipLeg,
        media: mpsc::Sender<MediaCommand>,
        conversation: String,
        questions: Vec<(SurveyRow, SurveyKind)>,
    ) {
        let surveys = self.state.surveys.clone();
        let mut left = false;
        'questions: for (question, kind) in &questions {
            if !self.on_survey_line(&dialog) {
                left = true;
                break;
            }
            if let Err(e) = surveys.call_asked(question).await {
                tracing::error!(call = %leg.call_id, "survey question not recorded: {e}");
                break;
            }
            for _ in 0..TRIES {
                let key = self.ask_key(&media, *kind).await;
                if !self.on_survey_line(&dialog) {
                    // A key pressed just before hanging up still counts.
                    if let Some(score) = kind.from_key(&key) {
                        let _ = surveys.call_answered(question, score, &key).await;
                    }
                    left = true;
                    break 'questions;
                }
                match kind.from_key(&key) {
                    Some(score) => {
                        if let Err(e) = surveys.call_answered(question, score, &key).await {
                            tracing::error!(call = %leg.call_id, "survey answer not recorded: {e}");
                        }
                        break;
                    }
                    None => tracing::debug!(
                        call = %leg.call_id, survey = %kind, key = %key,
                        "no valid key; asking again once"
                    ),
                }
            }
        }
        if !left && self.on_survey_line(&dialog) {
            let (done, finished) = oneshot::channel();
            let _ = media
                .send(MediaCommand::Play {
                    prompt: self.prompt("survey-thanks"),
                    looping: false,
                    done: Some(done),
                })
                .await;
            let _ = finished.await;
            left = !self.leave_survey_line(&dialog);
            if !left {
                ua::send_bye(&self.sip, self.public_ip(), self.sip_addr(), &leg).await;
            }
        }
        self.leave_survey_line(&dialog);
        let reason = if left { CALLER_LEFT } else { NO_KEY };
        if let Err(e) = surveys.call_over(&conversation, reason).await {
            tracing::error!(call = %leg.call_id, "survey not closed: {e}");
        }
    }

    /// Plays the question and waits for one key (empty when none came).
    async fn ask_key(&self, media: &mpsc::Sender<MediaCommand>, kind: SurveyKind) -> String {
        let _ = media
            .send(MediaCommand::Play {
                prompt: self.prompt(&format!("survey-{kind}")),
                looping: false,
                done: None,
            })
            .await;
        let (reply, key) = oneshot::channel();
        let _ = media
            .send(MediaCommand::Gather {
                max_digits: 1,
                timeout: KEY_TIMEOUT,
                reply,
            })
            .await;
        key.await.unwrap_or_default()
    }

    fn on_survey_line(&self, dialog: &str) -> bool {
        self.surveying
            .lock()
            .expect("surveying")
            .contains_key(dialog)
    }

    /// Takes a caller off the survey and stops their media. Whether they were on it.
    fn leave_survey_line(&self, dialog: &str) -> bool {
        let media = self.surveying.lock().expect("surveying").remove(dialog);
        match media {
            Some(media) => {
                let (reply, _) = oneshot::channel();
                let _ = media.try_send(MediaCommand::Stop(reply));
                true
            }
            None => false,
        }
    }

    /// The caller's BYE for a dialog in the survey: they leave it (answers given
    /// so far stand). Whether the dialog was in a survey.
    pub(crate) fn caller_left_survey(&self, dialog: &str) -> bool {
        self.leave_survey_line(dialog)
    }
}
