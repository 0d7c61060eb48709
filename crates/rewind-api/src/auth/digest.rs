//! Server-side HTTP Digest authentication (RFC 7616), as spoken by the MongoDB
//! Atlas Admin API. Pure logic: header parsing, stateless nonces, nonce-count
//! replay protection and response verification. No HTTP types, no async.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The realm Atlas uses; it is part of every stored HA1, so it must never change.
pub const REALM: &str = "MMS Public API";

/// Nonces minted slightly "in the future" are tolerated so replicas sharing a
/// secret with small clock skew (or a clock stepping back) don't reject each other.
const FUTURE_SKEW_SECS: u64 = 5;
/// timestamp(8) || random(16) || truncated HMAC(16).
const NONCE_RAW_LEN: usize = 40;
/// Unpadded base64 length of `NONCE_RAW_LEN` bytes; checked before decoding so
/// oversized client input is rejected without allocating.
const NONCE_B64_LEN: usize = 54;

type HmacSha256 = Hmac<Sha256>;

/// Digest hash algorithm offered/accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// `MD5` — what Atlas clients (curl, the Go SDK, Terraform) default to.
    Md5,
    /// `SHA-256` — RFC 7616's preferred algorithm.
    Sha256,
}

impl Algorithm {
    fn token(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Lowercase hex of H(parts joined by ':'), hashed incrementally to avoid a join.
    fn hash(self, parts: &[&str]) -> String {
        fn run<D: Digest>(parts: &[&str]) -> String {
            let mut h = D::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    h.update(b":");
                }
                h.update(p.as_bytes());
            }
            hex::encode(h.finalize())
        }
        match self {
            Algorithm::Md5 => run::<Md5>(parts),
            Algorithm::Sha256 => run::<Sha256>(parts),
        }
    }
}

/// The derived secrets stored for one API key: HA1 = H(username:realm:password)
/// for each algorithm, lowercase hex. Storing HA1 instead of the password means a
/// leaked row cannot be replayed against other realms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDigestSecret {
    /// MD5(username:REALM:password), lowercase hex.
    pub ha1_md5: String,
    /// SHA-256(username:REALM:password), lowercase hex.
    pub ha1_sha256: String,
}

impl StoredDigestSecret {
    /// Derive both HA1 values for `username`/`password` in [`REALM`].
    pub fn derive(username: &str, password: &str) -> Self {
        Self {
            ha1_md5: Algorithm::Md5.hash(&[username, REALM, password]),
            ha1_sha256: Algorithm::Sha256.hash(&[username, REALM, password]),
        }
    }

    fn ha1(&self, algorithm: Algorithm) -> &str {
        match algorithm {
            Algorithm::Md5 => &self.ha1_md5,
            Algorithm::Sha256 => &self.ha1_sha256,
        }
    }
}

/// Parsed `Authorization: Digest ...` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestCredentials {
    /// API public key (the Digest username).
    pub username: String,
    /// Realm the client hashed with; must be [`REALM`].
    pub realm: String,
    /// Server nonce echoed back by the client.
    pub nonce: String,
    /// Request-target the client hashed; must equal what the server received.
    pub uri: String,
    /// Client's response hash, as sent (hex).
    pub response: String,
    /// Hash algorithm; MD5 when the header omits it.
    pub algorithm: Algorithm,
    /// Quality of protection; only `auth` is accepted.
    pub qop: Option<String>,
    /// Nonce count, exactly 8 hex digits as sent; present iff `qop` is.
    pub nc: Option<String>,
    /// Client nonce; present iff `qop` is.
    pub cnonce: Option<String>,
    /// Opaque value echoed back; unused because we never send one.
    pub opaque: Option<String>,
}

/// Why a Digest authorization was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    /// The header does not follow the Digest grammar or misses a required field.
    #[error("malformed Digest authorization: {0}")]
    Malformed(String),
    /// The client asked for an algorithm we do not support.
    #[error("unsupported Digest algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// The client hashed with a realm other than [`REALM`].
    #[error("wrong Digest realm")]
    WrongRealm,
    /// The `uri` parameter differs from the request-target actually received.
    #[error("Digest uri does not match the request")]
    UriMismatch,
    /// The nonce is ours but expired; the client should retry with a fresh one.
    #[error("stale Digest nonce")]
    StaleNonce,
    /// The nonce was not minted by us (or was tampered with).
    #[error("invalid Digest nonce")]
    InvalidNonce,
    /// This (nonce, nc) pair, or a lower nc, was already used.
    #[error("replayed Digest nonce count")]
    ReplayedNonceCount,
    /// The response hash is wrong (wrong password, or tampered request).
    #[error("bad Digest response")]
    BadResponse,
}

fn malformed(why: &str) -> DigestError {
    DigestError::Malformed(why.to_owned())
}

/// Mints and checks stateless nonces:
/// base64url(timestamp_secs(8 bytes BE) || random(16) || HMAC-SHA256(secret, ts||random)[..16]).
/// Stateless so any replica sharing the secret can validate without a store.
pub struct NonceIssuer {
    /// The secret zero-padded to the SHA-256 block size, which is exactly what
    /// HMAC does to short keys; this lets us use the infallible constructor.
    key: [u8; 64],
    ttl: Duration,
}

impl std::fmt::Debug for NonceIssuer {
    // Hand-written so the secret never ends up in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceIssuer")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl NonceIssuer {
    /// Create an issuer whose nonces are valid for `ttl` after minting.
    pub fn new(secret: [u8; 32], ttl: Duration) -> Self {
        let mut key = [0u8; 64];
        key[..32].copy_from_slice(&secret);
        Self { key, ttl }
    }

    fn mac(&self, body: &[u8]) -> HmacSha256 {
        let mut mac = <HmacSha256 as Mac>::new(&self.key.into());
        mac.update(body);
        mac
    }

    /// Mint a fresh nonce stamped with `now_unix_secs`.
    pub fn mint(&self, now_unix_secs: u64) -> String {
        let random: [u8; 16] = rand::random();
        let mut raw = [0u8; NONCE_RAW_LEN];
        raw[..8].copy_from_slice(&now_unix_secs.to_be_bytes());
        raw[8..24].copy_from_slice(&random);
        let tag = self.mac(&raw[..24]).finalize().into_bytes();
        raw[24..].copy_from_slice(&tag[..16]);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Ok(()) if authentic and fresh; Err(StaleNonce) if authentic but older than ttl; Err(InvalidNonce) otherwise.
    pub fn check(&self, nonce: &str, now_unix_secs: u64) -> Result<(), DigestError> {
        if nonce.len() != NONCE_B64_LEN {
            return Err(DigestError::InvalidNonce);
        }
        // The engine rejects padding and non-zero trailing bits, so each nonce has
        // exactly one accepted spelling and cannot dodge the replay counter.
        let raw = URL_SAFE_NO_PAD
            .decode(nonce)
            .map_err(|_| DigestError::InvalidNonce)?;
        let raw: [u8; NONCE_RAW_LEN] = raw
            .as_slice()
            .try_into()
            .map_err(|_| DigestError::InvalidNonce)?;
        // Constant-time tag comparison.
        self.mac(&raw[..24])
            .verify_truncated_left(&raw[24..])
            .map_err(|_| DigestError::InvalidNonce)?;
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&raw[..8]);
        let minted = u64::from_be_bytes(ts);
        if minted > now_unix_secs.saturating_add(FUTURE_SKEW_SECS) {
            return Err(DigestError::InvalidNonce);
        }
        if now_unix_secs.saturating_sub(minted) > self.ttl.as_secs() {
            return Err(DigestError::StaleNonce);
        }
        Ok(())
    }
}

/// Per nonce: (first seen at, highest nc accepted); `None` means a qop-less
/// request consumed the nonce.
type Seen = HashMap<String, (u64, Option<u32>)>;

/// Remembers the highest nonce count seen per nonce so a replayed (nonce, nc) is
/// refused. Thread-safe (std Mutex); entries older than the nonce ttl are pruned
/// on insert (at most once per second, to keep inserts cheap).
pub struct NonceCounter {
    /// Entries are kept for ttl plus the issuer's future-skew allowance: by then
    /// the issuer rejects the nonce as stale, so forgetting it cannot enable replay.
    horizon_secs: u64,
    /// Seen nonces and when they were last pruned.
    state: Mutex<(Seen, u64)>,
}

impl NonceCounter {
    /// Create a counter for nonces issued with the same `ttl` as the [`NonceIssuer`].
    pub fn new(ttl: Duration) -> Self {
        Self {
            horizon_secs: ttl.as_secs().saturating_add(FUTURE_SKEW_SECS),
            state: Mutex::new((HashMap::new(), 0)),
        }
    }

    /// Err(ReplayedNonceCount) unless nc is strictly greater than any nc seen before
    /// for this nonce (nc 0 is never accepted: counts start at 1). Requests without
    /// qop (no nc) may use a nonce only once, and not after qop requests used it.
    pub fn observe(
        &self,
        nonce: &str,
        nc: Option<u32>,
        now_unix_secs: u64,
    ) -> Result<(), DigestError> {
        // The map is consistent at every step, so a poisoned lock is still usable.
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (seen, last_prune) = &mut *guard;
        if let Some((_, highest)) = seen.get_mut(nonce) {
            return match (*highest, nc) {
                (Some(h), Some(nc)) if nc > h => {
                    *highest = Some(nc);
                    Ok(())
                }
                _ => Err(DigestError::ReplayedNonceCount),
            };
        }
        if nc == Some(0) {
            return Err(DigestError::ReplayedNonceCount);
        }
        if now_unix_secs > *last_prune {
            seen.retain(|_, (first, _)| now_unix_secs.saturating_sub(*first) <= self.horizon_secs);
            *last_prune = now_unix_secs;
        }
        seen.insert(nonce.to_owned(), (now_unix_secs, nc));
        Ok(())
    }
}

/// Render `s` as an RFC 9110 quoted-string.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The WWW-Authenticate header values for a 401: MD5 first (as Atlas sends it),
/// then SHA-256. `stale` is `true` when the client's nonce was stale.
pub fn challenges(nonce: &str, stale: bool) -> Vec<String> {
    [Algorithm::Md5, Algorithm::Sha256]
        .into_iter()
        .map(|alg| {
            format!(
                "Digest realm={}, domain=\"\", nonce={}, algorithm={}, qop=\"auth\", stale={stale}",
                quote(REALM),
                quote(nonce),
                alg.token()
            )
        })
        .collect()
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Byte cursor over the auth-param list.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn ows(&mut self) {
        while matches!(self.s.get(self.i), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn token(&mut self) -> Result<String, DigestError> {
        let start = self.i;
        while self.s.get(self.i).is_some_and(|&b| is_tchar(b)) {
            self.i += 1;
        }
        if start == self.i {
            return Err(malformed("expected token"));
        }
        // tchars are ASCII, so this conversion cannot lose anything.
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    /// quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE, cursor on the DQUOTE.
    fn quoted(&mut self) -> Result<String, DigestError> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let b = *self
                .s
                .get(self.i)
                .ok_or_else(|| malformed("unterminated quoted-string"))?;
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let e = *self
                        .s
                        .get(self.i)
                        .ok_or_else(|| malformed("dangling escape"))?;
                    if e != b'\t' && (e < 0x20 || e == 0x7f) {
                        return Err(malformed("control character in quoted-pair"));
                    }
                    out.push(e);
                    self.i += 1;
                }
                b'\t' | 0x20..=0x7e | 0x80..=0xff => out.push(b),
                _ => return Err(malformed("control character in quoted-string")),
            }
        }
        // Only ASCII backslashes were dropped, so valid UTF-8 input stays valid.
        String::from_utf8(out).map_err(|_| malformed("invalid UTF-8"))
    }
}

/// Parse `name=value (, name=value)*` into lowercase names; duplicates are refused
/// because ambiguous credentials are a classic request-smuggling vector.
fn parse_params(s: &str) -> Result<HashMap<String, String>, DigestError> {
    let mut cur = Cursor {
        s: s.as_bytes(),
        i: 0,
    };
    let mut params = HashMap::new();
    loop {
        let name = cur.token()?.to_ascii_lowercase();
        cur.ows();
        if cur.s.get(cur.i) != Some(&b'=') {
            return Err(malformed("expected '='"));
        }
        cur.i += 1;
        cur.ows();
        let value = if cur.s.get(cur.i) == Some(&b'"') {
            cur.quoted()?
        } else {
            cur.token()?
        };
        if params.contains_key(&name) {
            return Err(DigestError::Malformed(format!(
                "duplicate parameter {name}"
            )));
        }
        params.insert(name, value);
        cur.ows();
        match cur.s.get(cur.i) {
            None => return Ok(params),
            Some(b',') => {
                cur.i += 1;
                cur.ows();
            }
            Some(_) => return Err(malformed("expected ',' between parameters")),
        }
    }
}

fn required(params: &mut HashMap<String, String>, name: &str) -> Result<String, DigestError> {
    params
        .remove(name)
        .ok_or_else(|| DigestError::Malformed(format!("missing {name}")))
}

/// Parse a header value starting with "Digest " (case-insensitive scheme). Strict
/// quoted-string parsing with backslash escapes; values may also be bare tokens.
/// Duplicated parameters are Malformed; username, realm, nonce, uri, response are
/// required; with qop, nc (8 hex digits) and cnonce are required and qop must be
/// "auth"; algorithm absent => MD5, "MD5"/"SHA-256" (case-insensitive) accepted,
/// anything else (including "-sess" variants) => UnsupportedAlgorithm.
pub fn parse_authorization(header_value: &str) -> Result<DigestCredentials, DigestError> {
    let v = header_value.trim_matches([' ', '\t']);
    let (scheme, rest) = v
        .split_once(' ')
        .ok_or_else(|| malformed("missing Digest parameters"))?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return Err(malformed("not a Digest authorization"));
    }
    let mut p = parse_params(rest.trim_start_matches([' ', '\t']))?;
    // Hashed or RFC 8187-encoded usernames can't be looked up by public key.
    if p.contains_key("username*")
        || p.get("userhash")
            .is_some_and(|u| u.eq_ignore_ascii_case("true"))
    {
        return Err(malformed("userhash and username* are not supported"));
    }
    let algorithm = match p.remove("algorithm") {
        None => Algorithm::Md5,
        Some(a) if a.eq_ignore_ascii_case("MD5") => Algorithm::Md5,
        Some(a) if a.eq_ignore_ascii_case("SHA-256") => Algorithm::Sha256,
        Some(a) => return Err(DigestError::UnsupportedAlgorithm(a)),
    };
    let response = required(&mut p, "response")?;
    let hex_len = match algorithm {
        Algorithm::Md5 => 32,
        Algorithm::Sha256 => 64,
    };
    if response.len() != hex_len || !response.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed(
            "response is not a hex digest of the right length",
        ));
    }
    let qop = p.remove("qop");
    let (nc, cnonce) = (p.remove("nc"), p.remove("cnonce"));
    match (&qop, &nc, &cnonce) {
        (Some(q), _, _) if !q.eq_ignore_ascii_case("auth") => {
            return Err(malformed("qop must be auth"));
        }
        (Some(_), Some(nc), Some(_))
            if nc.len() != 8 || !nc.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            return Err(malformed("nc must be 8 hex digits"));
        }
        (Some(_), Some(_), Some(_)) | (None, None, None) => {}
        (Some(_), _, _) => return Err(malformed("qop requires nc and cnonce")),
        (None, _, _) => return Err(malformed("nc/cnonce without qop")),
    }
    Ok(DigestCredentials {
        username: required(&mut p, "username")?,
        realm: required(&mut p, "realm")?,
        nonce: required(&mut p, "nonce")?,
        uri: required(&mut p, "uri")?,
        response,
        algorithm,
        qop,
        nc,
        cnonce,
        opaque: p.remove("opaque"),
    })
}

/// RFC 7616 §3.4.1: HA2 = H(method:uri); response = H(HA1:nonce:nc:cnonce:qop:HA2)
/// with qop (`qop` = (nc, cnonce, qop)), or H(HA1:nonce:HA2) without.
fn compute_response(
    algorithm: Algorithm,
    ha1: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    qop: Option<(&str, &str, &str)>,
) -> String {
    let ha2 = algorithm.hash(&[method, uri]);
    match qop {
        Some((nc, cnonce, qop)) => algorithm.hash(&[ha1, nonce, nc, cnonce, qop, &ha2]),
        None => algorithm.hash(&[ha1, nonce, &ha2]),
    }
}

/// Verify a parsed credential against the request. `request_uri` is the exact
/// request-target (path + query) received; `creds.uri` must equal it. Order:
/// realm, uri, nonce authenticity, constant-time response check, nonce freshness,
/// then nonce count. Staleness is reported only for a correct response (RFC 7616
/// §3.3: stale=true tells the client its password was right), and the nc is only
/// recorded after a correct response so wrong guesses cannot burn counts.
pub fn verify(
    creds: &DigestCredentials,
    method: &str,
    request_uri: &str,
    secret: &StoredDigestSecret,
    issuer: &NonceIssuer,
    counter: &NonceCounter,
    now_unix_secs: u64,
) -> Result<(), DigestError> {
    if creds.realm != REALM {
        return Err(DigestError::WrongRealm);
    }
    if creds.uri != request_uri {
        return Err(DigestError::UriMismatch);
    }
    let freshness = issuer.check(&creds.nonce, now_unix_secs);
    if freshness == Err(DigestError::InvalidNonce) {
        return freshness;
    }
    let qop = match (&creds.qop, &creds.nc, &creds.cnonce) {
        (Some(q), Some(nc), Some(cn)) => Some((nc.as_str(), cn.as_str(), q.as_str())),
        (None, _, _) => None,
        _ => return Err(malformed("qop requires nc and cnonce")),
    };
    let ha1 = secret.ha1(creds.algorithm);
    let expected = compute_response(creds.algorithm, ha1, method, &creds.uri, &creds.nonce, qop);
    let given = creds.response.to_ascii_lowercase();
    if !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
        return Err(DigestError::BadResponse);
    }
    freshness?;
    let nc = match qop {
        Some((nc, _, _)) => {
            Some(u32::from_str_radix(nc, 16).map_err(|_| malformed("nc must be hex"))?)
        }
        None => None,
    };
    counter.observe(&creds.nonce, nc, now_unix_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use DigestError::*;

    const NOW: u64 = 1_700_000_000;
    const TTL: Duration = Duration::from_secs(300);

    struct Fx(NonceIssuer, NonceCounter, StoredDigestSecret);

    impl Fx {
        fn new() -> Self {
            let secret = StoredDigestSecret::derive("pubkey", "priv-key");
            Fx(
                NonceIssuer::new([7; 32], TTL),
                NonceCounter::new(TTL),
                secret,
            )
        }
        fn verify(&self, c: &DigestCredentials, uri: &str, now: u64) -> Result<(), DigestError> {
            verify(c, "GET", uri, &self.2, &self.0, &self.1, now)
        }
    }

    /// The header a well-behaved client sends for `password` on GET `uri`.
    fn header(alg: Algorithm, password: &str, nonce: &str, uri: &str, nc: Option<&str>) -> String {
        let ha1 = alg.hash(&["pubkey", REALM, password]);
        let resp = compute_response(
            alg,
            &ha1,
            "GET",
            uri,
            nonce,
            nc.map(|n| (n, "c\"n", "auth")),
        );
        let (uri, alg) = (quote(uri), alg.token());
        let qop = nc
            .map(|n| format!(", qop=auth, nc={n}, cnonce=\"c\\\"n\""))
            .unwrap_or_default();
        format!(
            "Digest username=\"pubkey\", realm=\"{REALM}\", nonce=\"{nonce}\", uri={uri}, response=\"{resp}\", algorithm={alg}{qop}"
        )
    }

    fn md5_creds(password: &str, nonce: &str, nc: &str) -> DigestCredentials {
        parse_authorization(&header(Algorithm::Md5, password, nonce, "/x", Some(nc))).unwrap()
    }

    #[test]
    fn rfc7616_vectors() {
        let nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
        let qop = Some((
            "00000001",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            "auth",
        ));
        for (alg, want) in [
            (Algorithm::Md5, "8ca523f5e9506fed4657c9700eebdbec"),
            (
                Algorithm::Sha256,
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
        ] {
            let ha1 = alg.hash(&["Mufasa", "http-auth@example.org", "Circle of Life"]);
            let got = compute_response(alg, &ha1, "GET", "/dir/index.html", nonce, qop);
            assert_eq!(got, want);
        }
    }

    #[test]
    fn derive_and_challenges() {
        let s = StoredDigestSecret::derive("u", "p");
        assert_eq!(s.ha1_md5, hex::encode(Md5::digest(b"u:MMS Public API:p")));
        assert_eq!(
            s.ha1_sha256,
            hex::encode(Sha256::digest(b"u:MMS Public API:p"))
        );
        let c = challenges("n0", true);
        let md5 = r#"Digest realm="MMS Public API", domain="", nonce="n0", algorithm=MD5, qop="auth", stale=true"#;
        assert_eq!(c, [md5.to_owned(), md5.replace("MD5", "SHA-256")]);
        assert!(challenges("n", false)[0].ends_with("stale=false"));
    }

    #[test]
    fn end_to_end_both_algorithms_with_and_without_qop() {
        let fx = Fx::new();
        for alg in [Algorithm::Md5, Algorithm::Sha256] {
            for nc in [Some("00000001"), None] {
                let h = header(alg, "priv-key", &fx.0.mint(NOW), "/api/x?a=1,2", nc);
                let creds = parse_authorization(&h).unwrap();
                assert_eq!(creds.algorithm, alg);
                assert_eq!(fx.verify(&creds, "/api/x?a=1,2", NOW + 1), Ok(()));
                assert_eq!(
                    fx.verify(&creds, "/api/x?a=1,2", NOW + 1),
                    Err(ReplayedNonceCount)
                );
            }
        }
    }

    #[test]
    fn parser_accepts_escapes_and_tokens() {
        let h = format!(
            "dIgEsT  USERNAME=\"a\\\"b\\\\c\" ,realm=\"MMS Public API\",nonce=n,uri=\"/x\",response=\"{}\",qop=\"auth\",nc=0000000A,cnonce=c,opaque=\"o\",extra=1",
            "0".repeat(32)
        );
        let c = parse_authorization(&h).unwrap();
        assert_eq!(
            (c.username.as_str(), c.nonce.as_str(), c.algorithm),
            ("a\"b\\c", "n", Algorithm::Md5)
        );
        let opt = [c.qop, c.nc, c.cnonce, c.opaque].map(|o| o.unwrap_or_default());
        assert_eq!(opt, ["auth", "0000000A", "c", "o"]);
    }

    #[test]
    fn parser_rejections() {
        let base = format!(
            "username=u, realm=r, nonce=n, uri=\"/\", response=\"{}\"",
            "a".repeat(32)
        );
        assert!(parse_authorization(&format!("Digest {base}")).is_ok());
        assert!(parse_authorization(&format!("Digest {base}, algorithm=md5")).is_ok());
        let whole = [
            "",
            "Digest",
            "Digest ",
            "Basic dXNlcjpwYXNz",
            "Digest ,,,",
            "Digest username",
            "Digest username=\"unterminated",
            "Digest username=\"x\\",
            "Digest username=\"a\u{1}b\"",
            "\u{0}\u{ffff}garbage=\"\"\"",
        ];
        // Appended to an otherwise valid header.
        let suffixes = [
            ",",
            " realm=x",
            ", Realm=x",
            ", username*=UTF-8''x",
            ", qop=auth, nc=00000001",
            ", qop=auth, cnonce=c",
            ", qop=auth-int, nc=00000001, cnonce=c",
            ", qop=auth, nc=1, cnonce=c",
            ", qop=auth, nc=0000000g, cnonce=c",
            ", nc=00000001, cnonce=c",
            ", algorithm=SHA-256",
            ", userhash=true",
        ];
        let suffixed = suffixes.map(|s| format!("Digest {base}{s}"));
        for h in whole
            .iter()
            .copied()
            .chain(suffixed.iter().map(String::as_str))
        {
            assert!(matches!(parse_authorization(h), Err(Malformed(_))), "{h:?}");
        }
        let h = format!("Digest {}", base.replace("response=\"a", "response=\"z"));
        assert!(matches!(parse_authorization(&h), Err(Malformed(_))));
        for field in ["username", "realm", "nonce", "uri", "response"] {
            let rest: Vec<_> = base.split(", ").filter(|p| !p.starts_with(field)).collect();
            let got = parse_authorization(&format!("Digest {}", rest.join(", ")));
            assert_eq!(got, Err(Malformed(format!("missing {field}"))));
        }
        for alg in ["MD5-sess", "SHA-256-sess", "SHA-512-256", "\"\""] {
            let got = parse_authorization(&format!("Digest {base}, algorithm={alg}"));
            assert!(matches!(got, Err(UnsupportedAlgorithm(_))), "{alg}");
        }
    }

    #[test]
    fn fuzz_never_panics() {
        let fx = Fx::new();
        let valid = header(
            Algorithm::Sha256,
            "priv-key",
            &fx.0.mint(NOW),
            "/x",
            Some("00000001"),
        );
        for _ in 0..20_000 {
            let mut bytes = valid.clone().into_bytes();
            for _ in 0..rand::random_range(1..4) {
                let i = rand::random_range(0..bytes.len());
                match rand::random_range(0..3) {
                    0 => bytes[i] = rand::random(),
                    1 => drop(bytes.remove(i)),
                    _ => bytes.insert(i, b"\"\\,= \t"[rand::random_range(0..6)]),
                }
            }
            let s = String::from_utf8_lossy(&bytes);
            if let Ok(c) = parse_authorization(&s) {
                let _ = fx.verify(&c, "/x", NOW);
            }
            let _ = fx.0.check(&s, NOW);
            let junk: Vec<u8> = (0..rand::random_range(0..80))
                .map(|_| rand::random())
                .collect();
            let _ = parse_authorization(&String::from_utf8_lossy(&junk));
        }
    }

    #[test]
    fn nonce_checks() {
        let issuer = NonceIssuer::new([1; 32], TTL);
        let nonce = issuer.mint(NOW);
        assert_eq!(nonce.len(), NONCE_B64_LEN);
        assert_ne!(nonce, issuer.mint(NOW), "nonces carry randomness");
        assert_eq!(issuer.check(&nonce, NOW + 300), Ok(()));
        assert_eq!(issuer.check(&nonce, NOW + 301), Err(StaleNonce));
        assert_eq!(issuer.check(&nonce, NOW - FUTURE_SKEW_SECS), Ok(()));
        assert_eq!(
            issuer.check(&nonce, NOW - FUTURE_SKEW_SECS - 1),
            Err(InvalidNonce)
        );
        assert_eq!(
            NonceIssuer::new([2; 32], TTL).check(&nonce, NOW),
            Err(InvalidNonce)
        );
        for i in 0..nonce.len() {
            let mut t = nonce.clone().into_bytes();
            t[i] = if t[i] == b'A' { b'B' } else { b'A' };
            let t = String::from_utf8(t).unwrap();
            assert_eq!(issuer.check(&t, NOW), Err(InvalidNonce), "{t}");
        }
        let (padded, long) = (format!("{nonce}="), format!("{nonce}A"));
        for bad in ["", "x", &padded, &nonce[1..], &long] {
            assert_eq!(issuer.check(bad, NOW), Err(InvalidNonce));
        }
    }

    #[test]
    fn counter_semantics_and_pruning() {
        let c = NonceCounter::new(TTL);
        let steps = [
            ("a", Some(0), Err(ReplayedNonceCount)),
            ("a", Some(2), Ok(())),
            ("a", Some(2), Err(ReplayedNonceCount)),
            ("a", Some(1), Err(ReplayedNonceCount)),
            ("a", None, Err(ReplayedNonceCount)),
            ("a", Some(3), Ok(())),
            ("b", None, Ok(())),
            ("b", None, Err(ReplayedNonceCount)),
            ("b", Some(5), Err(ReplayedNonceCount)),
        ];
        for (nonce, nc, want) in steps {
            assert_eq!(c.observe(nonce, nc, NOW), want, "{nonce} {nc:?}");
        }
        let later = NOW + TTL.as_secs() + FUTURE_SKEW_SECS + 1;
        assert_eq!(c.observe("c", Some(1), later), Ok(()));
        assert_eq!(c.state.lock().unwrap().0.keys().collect::<Vec<_>>(), ["c"]);
    }

    #[test]
    fn verify_failures_do_not_consume_nc() {
        let fx = Fx::new();
        let nonce = fx.0.mint(NOW);
        let (good, wrong) = (
            md5_creds("priv-key", &nonce, "00000001"),
            md5_creds("nope", &nonce, "00000001"),
        );
        assert_eq!(fx.verify(&wrong, "/x", NOW), Err(BadResponse));
        assert_eq!(
            verify(&good, "POST", "/x", &fx.2, &fx.0, &fx.1, NOW),
            Err(BadResponse)
        );
        assert_eq!(fx.verify(&good, "/x?y", NOW), Err(UriMismatch));
        let other_realm = DigestCredentials {
            realm: "other".into(),
            ..good.clone()
        };
        assert_eq!(fx.verify(&other_realm, "/x", NOW), Err(WrongRealm));
        // Stale is only reported when the password was right (RFC 7616 §3.3).
        assert_eq!(fx.verify(&good, "/x", NOW + 301), Err(StaleNonce));
        assert_eq!(fx.verify(&wrong, "/x", NOW + 301), Err(BadResponse));
        let forged = md5_creds("priv-key", &"A".repeat(NONCE_B64_LEN), "00000001");
        assert_eq!(fx.verify(&forged, "/x", NOW), Err(InvalidNonce));
        assert_eq!(fx.verify(&good, "/x", NOW), Ok(()));
        assert_eq!(fx.verify(&good, "/x", NOW), Err(ReplayedNonceCount));
        let next = md5_creds("priv-key", &nonce, "00000002");
        assert_eq!(fx.verify(&next, "/x", NOW), Ok(()));
        let bumped = DigestCredentials {
            nc: Some("00000003".into()),
            ..next
        };
        assert_eq!(
            fx.verify(&bumped, "/x", NOW),
            Err(BadResponse),
            "nc is part of the hash"
        );
        let c = md5_creds("priv-key", &nonce, "00000003");
        let upper = DigestCredentials {
            response: c.response.to_ascii_uppercase(),
            ..c
        };
        assert_eq!(
            fx.verify(&upper, "/x", NOW),
            Ok(()),
            "hex case is not significant"
        );
    }
}
