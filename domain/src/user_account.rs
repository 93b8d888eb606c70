//! Changes to dashboard and service accounts, kept as audit records. The `users` table holds
//! each account's current state (gateway/src/users.rs decides a change against it); every
//! change appends one of these events in the same transaction, so the hash-chained log says
//! who changed which account, when, and how. Passwords never appear, not even hashed.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum UserAccountEvent {
    UserAdded {
        role: String,
        /// `None`: every tenant.
        tenants: Option<Vec<String>>,
    },
    UserRoleChanged {
        from: String,
        to: String,
    },
    UserTenantsChanged {
        from: Option<Vec<String>>,
        to: Option<Vec<String>>,
    },
    UserDisabled,
    UserEnabled,
    UserPasswordReset,
}

impl DomainEvent for UserAccountEvent {
    fn event_type(&self) -> String {
        match self {
            UserAccountEvent::UserAdded { .. } => "UserAdded",
            UserAccountEvent::UserRoleChanged { .. } => "UserRoleChanged",
            UserAccountEvent::UserTenantsChanged { .. } => "UserTenantsChanged",
            UserAccountEvent::UserDisabled => "UserDisabled",
            UserAccountEvent::UserEnabled => "UserEnabled",
            UserAccountEvent::UserPasswordReset => "UserPasswordReset",
        }
        .into()
    }

    fn event_version(&self) -> String {
        "1".into()
    }
}

/// The account's audit trail as an aggregate of the event store (keyed by username). It
/// takes no commands: the decision is made against the `users` row under the aggregate's
/// lock, and this type only names the stream the events go to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserAccount;

impl Aggregate for UserAccount {
    const TYPE: &'static str = "UserAccount";
    type Command = ();
    type Event = UserAccountEvent;
    type Error = std::convert::Infallible;
    type Services = ();

    async fn handle(
        &mut self,
        _command: Self::Command,
        _services: &Self::Services,
        _sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    fn apply(&mut self, _event: Self::Event) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_tagged_objects_named_by_their_type() {
        for event in [
            UserAccountEvent::UserAdded {
                role: "viewer".into(),
                tenants: Some(vec!["org1".into()]),
            },
            UserAccountEvent::UserDisabled,
            UserAccountEvent::UserPasswordReset,
        ] {
            let json = serde_json::to_value(&event).unwrap();
            assert_eq!(json["type"], event.event_type());
            assert_eq!(
                serde_json::from_value::<UserAccountEvent>(json).unwrap(),
                event
            );
        }
    }
}
