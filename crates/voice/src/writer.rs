//! A call's writes, off the audio path: one task per call stores the transcript's lines in
//! the conversation, cuts answers the caller spoke over and saves the call's record, in the
//! order they were asked for, while the call's loop goes on relaying audio.
//!
//! While a supervisor's run is under way lines wait (its answer hangs from the conversation's
//! active message) and are stored after it.

use std::collections::HashMap;

use frontdesk_core::conversation::{Message, MessageDraft, MessageRole};
use frontdesk_core::id::{ConversationId, TenantId};
use frontdesk_core::voice::{Call, Speaker};
use frontdesk_core::Service;
use tokio::sync::{mpsc, oneshot};

/// What the writer is asked to do.
#[derive(Debug)]
pub(crate) enum Write {
    /// A line of the transcript, for the conversation (the realtime item of an answer).
    Line {
        speaker: Speaker,
        text: String,
        item: Option<String>,
        model: Option<String>,
    },
    /// The answer `item` keeps only what the caller heard.
    Cut { item: String, heard: String },
    /// A stored answer (a run's) keeps only what the caller heard.
    CutMessage {
        message: Box<Message>,
        heard: String,
    },
    /// Lines wait (a supervisor's run starts) or go on (it ended).
    Hold(bool),
    /// Saves the call's record as it is.
    Save(Box<Call>),
    /// Answers once everything asked before is done.
    Synced(oneshot::Sender<()>),
    /// Stores every line still waiting (the call is over), then answers.
    Flush(oneshot::Sender<()>),
}

struct Line {
    speaker: Speaker,
    text: String,
    item: Option<String>,
    model: Option<String>,
}

struct Writer {
    service: Service,
    tenant: TenantId,
    conversation: Option<ConversationId>,
    held: usize,
    waiting: Vec<Line>,
    /// The stored answers by realtime item.
    answers: HashMap<String, Message>,
}

/// Starts a call's writer; its sender (the task ends when the sender is dropped).
pub(crate) fn start(
    service: Service,
    tenant: TenantId,
    conversation: Option<ConversationId>,
) -> mpsc::UnboundedSender<Write> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut writer = Writer {
        service,
        tenant,
        conversation,
        held: 0,
        waiting: Vec::new(),
        answers: HashMap::new(),
    };
    tokio::spawn(async move {
        while let Some(write) = rx.recv().await {
            writer.apply(write).await;
        }
        writer.held = 0;
        writer.store_waiting().await;
    });
    tx
}

impl Writer {
    async fn apply(&mut self, write: Write) {
        match write {
            Write::Line {
                speaker,
                text,
                item,
                model,
            } => {
                self.waiting.push(Line {
                    speaker,
                    text,
                    item,
                    model,
                });
                self.store_waiting().await;
            }
            Write::Cut { item, heard } => {
                if let Some(line) = self
                    .waiting
                    .iter_mut()
                    .find(|l| l.item.as_deref() == Some(item.as_str()))
                {
                    line.text = heard;
                } else if let Some(message) = self.answers.get(&item).cloned() {
                    self.cut(&message, &heard).await;
                }
            }
            Write::CutMessage { message, heard } => self.cut(&message, &heard).await,
            Write::Hold(true) => self.held += 1,
            Write::Hold(false) => {
                self.held = self.held.saturating_sub(1);
                self.store_waiting().await;
            }
            Write::Save(call) => {
                if let Err(error) = self.service.save_call(&call).await {
                    tracing::warn!(call = %call.id, %error, "the call's record could not be saved");
                }
            }
            Write::Synced(done) => {
                let _ = done.send(());
            }
            Write::Flush(done) => {
                self.held = 0;
                self.store_waiting().await;
                let _ = done.send(());
            }
        }
    }

    async fn cut(&self, message: &Message, heard: &str) {
        if let Err(error) = self
            .service
            .truncate_answer(&self.tenant, message, heard)
            .await
        {
            tracing::warn!(%error, "an interrupted answer could not be cut");
        }
    }

    async fn store_waiting(&mut self) {
        if self.held > 0 {
            return;
        }
        let Some(conversation) = self.conversation.clone() else {
            self.waiting.clear();
            return;
        };
        for line in std::mem::take(&mut self.waiting) {
            let role = match line.speaker {
                Speaker::Caller => MessageRole::User,
                Speaker::Agent => MessageRole::Assistant,
            };
            let mut draft = MessageDraft::text(role, line.text);
            draft.model = line.model;
            match self
                .service
                .append_message(&self.tenant, &conversation, draft)
                .await
            {
                Ok(message) => {
                    if let Some(item) = line.item {
                        self.answers.insert(item, message);
                    }
                }
                Err(error) => {
                    tracing::warn!(%conversation, %error, "a line of the call could not be stored")
                }
            }
        }
    }
}
