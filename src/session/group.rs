//! A stream group's live side: when its passthrough's session begins, every transcode member
//! begins its own session (its own catalog session, hub, sinks from its own settings) and one
//! transcoder feeds them; when the passthrough's session ends, they end with it, with the
//! same reason, once the transcoder has flushed them.
//!
//! A member that cannot begin (locked, deleted, a profile the encoder cannot make) is left
//! out with a log line and its status says why; the rest of the group runs.

use super::{LiveSession, LiveSessions};
use crate::catalog::{EndReason, Stream};
use crate::hub::Publisher;
use crate::transcode::{self, encode, RenditionPlan, Transcoder, STATUS_ID};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long ending a group waits for its transcoder to flush the renditions.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// What a passthrough's session runs for its group.
pub struct GroupRun {
    pub members: Vec<Arc<LiveSession>>,
    transcoder: Transcoder,
}

impl LiveSessions {
    /// Starts the group of `passthrough` (index 0 of a group with transcodes), if its
    /// organisation has the `transcoding` package.
    pub(super) async fn start_group(&self, passthrough: &Arc<LiveSession>) -> Option<GroupRun> {
        let stream = &passthrough.stream;
        if stream.index != 0 {
            return None;
        }
        let catalog = &self.ctx().catalog;
        let members: Vec<Stream> = match catalog
            .group_streams(&stream.org_hash, stream.streamgroup)
            .await
        {
            Ok(group) => group.into_iter().filter(|s| s.profile.is_some()).collect(),
            Err(e) => {
                tracing::error!(stream = %stream.streamname, error = %e, "cannot read the stream group: not transcoding");
                return None;
            }
        };
        if members.is_empty() {
            return None;
        }
        let transcoding =
            matches!(catalog.get_org(&stream.org_hash).await, Ok(Some(org)) if org.transcoding);
        let mut plans = Vec::new();
        let mut sessions = Vec::new();
        for member in members {
            let Some(profile) = member.profile else {
                continue;
            };
            let status = match self.claim(&member) {
                Ok(status) => status,
                Err(refusal) => {
                    tracing::warn!(stream = %member.streamname, reason = %refusal, "transcode member not started");
                    continue;
                }
            };
            if !transcoding {
                status.disabled(
                    STATUS_ID,
                    "the organisation has no transcoding package".into(),
                );
                self.release_claim(member.id);
                continue;
            }
            if !encode::supported(&profile) {
                status.error(
                    STATUS_ID,
                    encode::EncodeError::UnsupportedSize(profile).to_string(),
                );
                self.release_claim(member.id);
                continue;
            }
            let begun = catalog
                .begin_publish(member.id, passthrough.app, &self.ctx().node_id)
                .await;
            let catalog_session = match begun {
                Ok(Ok(session)) => session,
                Ok(Err(refusal)) => {
                    tracing::warn!(stream = %member.streamname, reason = ?refusal, "transcode member refused by the catalog; left out of this session");
                    self.release_claim(member.id);
                    continue;
                }
                Err(e) => {
                    tracing::error!(stream = %member.streamname, error = %e, "cannot open the transcode member's session");
                    self.release_claim(member.id);
                    continue;
                }
            };
            if let Err(e) = catalog
                .set_group_session(catalog_session.id, passthrough.session_id)
                .await
            {
                tracing::error!(stream = %member.streamname, error = %e, "cannot link the member's session to its group's");
            }
            let publisher = Publisher::new(self.ctx().ring_limits);
            let session = Arc::new(LiveSession {
                session_id: catalog_session.id,
                app: passthrough.app,
                hub: publisher.hub().clone(),
                status: status.clone(),
                hls: Mutex::default(),
                lingering: Mutex::default(),
                group: Mutex::default(),
                stream: member,
            });
            {
                let mut registry = self.registry();
                let slot = registry.by_id.entry(session.stream.id).or_default();
                slot.claimed = false;
                slot.live = Some(session.clone());
            }
            super::sinks::start(self.ctx(), &session).await;
            tracing::info!(stream = %session.stream.streamname, profile = %profile, session = %session.session_id, "transcode rendition started");
            plans.push(RenditionPlan {
                streamname: session.stream.streamname.clone(),
                profile,
                publisher,
                status,
            });
            sessions.push(session);
        }
        if plans.is_empty() {
            return None;
        }
        // Every rendition's HLS starts now, before the first packet, so all of them cut
        // their segments from the same first keyframe and number them alike.
        self.hls_output(passthrough, true);
        for member in &sessions {
            self.hls_output(member, true);
        }
        let transcoder = transcode::start(
            &passthrough.hub,
            &stream.streamname,
            plans,
            &self.ctx().transcode_metrics,
        );
        Some(GroupRun {
            members: sessions,
            transcoder,
        })
    }

    /// Ends a group's members after its passthrough's publisher has gone: waits for the
    /// transcoder to flush them, then closes their sessions with the passthrough's reason.
    pub(super) async fn end_group(&self, run: GroupRun, reason: EndReason) {
        if tokio::time::timeout(FLUSH_TIMEOUT, run.transcoder.finished())
            .await
            .is_err()
        {
            tracing::error!(
                "a transcoder did not finish within {FLUSH_TIMEOUT:?}; closing its members' sessions anyway"
            );
        }
        for member in run.members {
            if let Err(e) = self
                .ctx()
                .catalog
                .end_publish(member.session_id, reason)
                .await
            {
                tracing::error!(stream = %member.stream.streamname, error = %e, "could not close the member's session in the catalog");
            }
            self.forget(&member);
        }
    }
}
