//! The client side: answering challenges.

use carevox_redact::Pii;
use ring::rand::SecureRandom;

use super::digest::{Challenge, Credentials, user_hash};
use super::{
    Algorithm, DigestError, Password, Qop, Request, ResponseInput, UserSecret, compute_response,
};

/// Answers digest challenges for one user, counting `nc` per nonce.
/// `Debug` shows neither the user name nor the password.
#[derive(Debug, Clone)]
pub struct DigestClient {
    username: Pii<String>,
    secret: UserSecret,
    /// The nonce last answered and the count used with it.
    last: Option<(Pii<String>, u32)>,
}

impl DigestClient {
    /// A client for `username` with `password`.
    pub fn new(username: &str, password: Password) -> DigestClient {
        DigestClient {
            username: Pii::new(username.to_owned()),
            secret: UserSecret::Password(password),
            last: None,
        }
    }

    /// Builds the `Authorization` (or `Proxy-Authorization`) value answering
    /// `challenge` for `request`. The cnonce comes from `rng`; the nonce
    /// count starts at 1 for a new nonce and increases for each request
    /// answered with the same nonce.
    ///
    /// `qop=auth` is chosen when offered, `auth-int` otherwise; a challenge
    /// without qop (RFC 2069) is refused.
    pub fn authorize(
        &mut self,
        challenge: &Challenge,
        request: &Request<'_>,
        rng: &dyn SecureRandom,
    ) -> Result<Credentials, DigestError> {
        let qop = if challenge.qop.contains(&Qop::Auth) {
            Qop::Auth
        } else if challenge.qop.contains(&Qop::AuthInt) {
            Qop::AuthInt
        } else {
            return Err(DigestError::UnsupportedQop);
        };
        if request.uri().is_empty() || request.uri().chars().any(char::is_control) {
            return Err(DigestError::InvalidParam("uri"));
        }
        let algorithm = challenge.effective_algorithm();
        let nc = match &self.last {
            Some((nonce, n)) if nonce == &challenge.nonce => {
                n.checked_add(1).ok_or(DigestError::InvalidParam("nc"))?
            }
            _ => 1,
        };
        let mut raw = [0u8; 16];
        rng.fill(&mut raw).map_err(|_| DigestError::Random)?;
        let cnonce = data_encoding::HEXLOWER.encode(&raw);
        let nc_text = format!("{nc:08x}");
        let response = compute_response(
            &ResponseInput {
                algorithm,
                username: self.username.expose(),
                realm: &challenge.realm,
                nonce: challenge.nonce.expose(),
                cnonce: &cnonce,
                nc: &nc_text,
                qop,
                request,
            },
            &self.secret,
        )
        .ok_or(DigestError::UnsupportedAlgorithm)?;
        let (username, extended_username) = if challenge.userhash {
            (
                user_hash(algorithm, self.username.expose(), &challenge.realm),
                false,
            )
        } else {
            let ascii = self
                .username
                .expose()
                .chars()
                .all(|c| c.is_ascii() && !c.is_ascii_control());
            (self.username.expose().clone(), !ascii)
        };
        self.last = Some((challenge.nonce.clone(), nc));
        Ok(Credentials {
            username: Pii::new(username),
            extended_username,
            realm: Pii::new(challenge.realm.clone()),
            nonce: challenge.nonce.clone(),
            uri: Pii::new(request.uri().to_owned()),
            response: Pii::new(response.as_str().to_owned()),
            algorithm: challenge.algorithm,
            cnonce: Pii::new(Some(cnonce)),
            opaque: challenge.opaque.clone(),
            qop: Some(qop),
            nc: Some(nc),
            userhash: challenge.userhash,
        })
    }

    /// The response for fixed inputs: for test vectors and for callers that
    /// manage the cnonce and nonce count themselves.
    #[allow(clippy::too_many_arguments)]
    pub fn response_for(
        &self,
        algorithm: Algorithm,
        realm: &str,
        nonce: &str,
        cnonce: &str,
        nc: u32,
        qop: Qop,
        request: &Request<'_>,
    ) -> Option<String> {
        let nc_text = format!("{nc:08x}");
        compute_response(
            &ResponseInput {
                algorithm,
                username: self.username.expose(),
                realm,
                nonce,
                cnonce,
                nc: &nc_text,
                qop,
                request,
            },
            &self.secret,
        )
        .map(|h| h.as_str().to_owned())
    }
}
