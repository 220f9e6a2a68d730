//! The policy language of role access tokens (Databunker Pro's CRBAC, an IAM-like
//! JSON), and its decisions as pure functions of (principal, action, resource,
//! facts): no I/O, no clock, no store. `docs/security-model.md` is its manual.
//!
//! A policy is one statement, a list of them, or `{"Statement": [...]}`. A statement:
//!
//! ```json
//! { "Effect": "Allow",                          // or "Deny"
//!   "Principal": {"Role": "support"},           // optional: a role name or a list
//!   "Action": ["UserGet", "Bulk*"],             // v2 method names; `*` is a wildcard
//!   "Resource": ["users.profile.name"],         // optional, default "*"
//!   "Condition": {"StringEquals": {"${request_metadata:purpose}": "support"}} }
//! ```
//!
//! Evaluation: a statement *applies* when its principal, action and resource match
//! and all its conditions hold. An applying `Deny` wins over any `Allow`; without
//! one, an applying `Allow` allows; with neither the answer is no (default deny).
//! Statements and policies are combined this way whatever their order, so adding a
//! policy can only narrow what a `Deny` forbids, never widen it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Most statements in one policy, and most entries in one list of it.
const MAX_STATEMENTS: usize = 100;
const MAX_LIST: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// What part of a person a resource names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// `users.*`: everything about the person.
    All,
    /// `users.profile` / `users.profile.*` (`None`), or one top-level field.
    Profile(Option<String>),
    AppData,
    Agreement,
    Group,
    Session,
    /// `users.files`: the person's files in the file vault.
    Files,
}

/// Whose records a resource covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// `users`: any person.
    Users,
    /// `${target_group_members}` or `${target_group_members:role/<r>}`: people in a
    /// group the caller is also in (holding role `r` there, when named).
    GroupMembers(Option<String>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResourcePattern {
    /// `*`: everything, people and the rest.
    Any,
    Person(Scope, Part),
}

/// A value a condition reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Variable {
    /// `${request_metadata:<key>}`: a key of the call's `request_metadata`.
    RequestMetadata(String),
    /// `${agreement:<brief>}`: the person's consent to a legal basis: `yes`, `no`,
    /// or nothing; an expired consent reads `no`.
    Agreement(String),
    /// `${user:<field>}`: a top-level field of the person's profile.
    User(String),
    /// `${principal_group_id}` (also `${user_group_id}`): the caller's groups.
    PrincipalGroups,
    /// `${target_group_id}`: the person's groups.
    TargetGroups,
    /// `${purpose_consented}`: `true` when the person has agreed (`yes`, not
    /// expired) to the legal basis `request_metadata.purpose` names.
    PurposeConsented,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operand {
    Literal(String),
    Var(Variable),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    /// Some value on the left equals some value on the right.
    StringEquals,
    /// No value on the left equals a value on the right.
    StringNotEquals,
    /// `ForAnyValue:ListIntersect`: the two lists share a value.
    ListIntersect,
    /// The left value, as a boolean, is the right one.
    Bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    pub op: Operator,
    pub left: Operand,
    pub right: Vec<Operand>,
}

impl Condition {
    /// Whether an operand is a variable `pick` selects.
    fn reads(&self, pick: impl Fn(&Variable) -> bool) -> bool {
        std::iter::once(&self.left)
            .chain(&self.right)
            .any(|o| matches!(o, Operand::Var(v) if pick(v)))
    }
}

impl Statement {
    /// Whether the statement is about `caller` (its roles) doing `action`.
    fn names(&self, caller: Caller, action: &str) -> bool {
        self.roles
            .as_ref()
            .is_none_or(|roles| roles.iter().any(|r| caller.roles.contains(r)))
            && self.actions.iter().any(|a| glob(a, action))
    }
}

impl Variable {
    /// Whether the variable describes the person a call reaches.
    fn is_about_person(&self) -> bool {
        matches!(
            self,
            Variable::Agreement(_)
                | Variable::User(_)
                | Variable::TargetGroups
                | Variable::PurposeConsented
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub effect: Effect,
    /// `None`: whoever holds a role the policy is linked to.
    pub roles: Option<Vec<String>>,
    pub actions: Vec<String>,
    pub resources: Vec<ResourcePattern>,
    pub conditions: Vec<Condition>,
}

/// A checked policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub statements: Vec<Statement>,
}

/// What a call reaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resource<'a> {
    /// Nothing about one person (a token, the catalogue of legal bases, …): only
    /// `*` covers it.
    Global,
    /// `part` of a person (`Part::Profile(Some(f))`: one field of their profile).
    Person(&'a Part),
}

/// What a decision may read: the facts of the call.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub request_metadata: Option<Value>,
    pub principal_groups: BTreeSet<String>,
    /// The person's groups, with their role in each.
    pub target_groups: BTreeMap<String, Option<String>>,
    /// The person's live consents: brief → `yes` / `no`.
    pub agreements: BTreeMap<String, String>,
    pub profile: Option<Value>,
    /// The facts describe a person (the call reaches one). When not, a condition
    /// on the person cannot be known: an Allow that has one does not apply, a
    /// Deny does.
    pub person: bool,
}

/// The principal a decision is about: the roles it holds.
#[derive(Clone, Copy, Debug)]
pub struct Caller<'a> {
    pub roles: &'a [String],
}

/// A decision, and the policy (by its index in the set) and statement that made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// `None`: no statement applied (default deny).
    pub by: Option<(usize, usize)>,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::bad_request(format!("The policy is not valid: {}", msg.into()))
}

/// `value` as a list of strings (a string is a list of one).
fn strings(value: &Value, what: &str) -> Result<Vec<String>> {
    let list = match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) if !a.is_empty() && a.len() <= MAX_LIST => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| invalid(format!("{what} lists only strings")))
            })
            .collect::<Result<_>>()?,
        _ => {
            return Err(invalid(format!(
                "{what} is a string or a list of 1 to {MAX_LIST} strings"
            )));
        }
    };
    if list.iter().any(|s| s.is_empty() || s.len() > 200) {
        return Err(invalid(format!("{what} has an empty or overlong entry")));
    }
    Ok(list)
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

fn parse_variable(text: &str) -> Result<Option<Variable>> {
    let Some(inner) = text.strip_prefix("${").and_then(|t| t.strip_suffix('}')) else {
        if text.contains("${") {
            return Err(invalid(format!(
                "`{text}` is not a variable: write ${{name}}"
            )));
        }
        return Ok(None);
    };
    let named = |prefix: &str| inner.strip_prefix(prefix).filter(|n| is_name(n));
    let var = match inner {
        "principal_group_id" | "user_group_id" => Variable::PrincipalGroups,
        "target_group_id" => Variable::TargetGroups,
        "purpose_consented" => Variable::PurposeConsented,
        _ => {
            if let Some(key) = named("request_metadata:") {
                Variable::RequestMetadata(key.into())
            } else if let Some(brief) = named("agreement:") {
                Variable::Agreement(brief.into())
            } else if let Some(field) = named("user:") {
                Variable::User(field.into())
            } else {
                return Err(invalid(format!(
                    "unknown variable `{text}`; known: ${{request_metadata:<key>}}, ${{agreement:<brief>}}, ${{user:<field>}}, ${{principal_group_id}}, ${{user_group_id}}, ${{target_group_id}}, ${{purpose_consented}}"
                )));
            }
        }
    };
    Ok(Some(var))
}

fn operand(text: &str) -> Result<Operand> {
    Ok(match parse_variable(text)? {
        Some(v) => Operand::Var(v),
        None => Operand::Literal(text.to_string()),
    })
}

fn parse_resource(text: &str) -> Result<ResourcePattern> {
    if text == "*" {
        return Ok(ResourcePattern::Any);
    }
    let bad = || {
        invalid(format!(
            "unknown resource `{text}`; write *, or users or ${{target_group_members}} or ${{target_group_members:role/<role>}} followed by .*, .profile, .profile.*, .profile.<field>, .appdata, .agreement, .consent, .group or .session"
        ))
    };
    let (scope, rest) = if let Some(rest) = text.strip_prefix("users.") {
        (Scope::Users, rest)
    } else if let Some(rest) = text.strip_prefix("${target_group_members}.") {
        (Scope::GroupMembers(None), rest)
    } else if let Some(after) = text.strip_prefix("${target_group_members:role/") {
        let (role, rest) = after.split_once("}.").ok_or_else(bad)?;
        if !is_name(role) {
            return Err(bad());
        }
        (Scope::GroupMembers(Some(role.into())), rest)
    } else {
        return Err(bad());
    };
    let part = match rest {
        "*" => Part::All,
        "profile" | "profile.*" => Part::Profile(None),
        "appdata" => Part::AppData,
        "agreement" | "consent" => Part::Agreement,
        "group" => Part::Group,
        "session" => Part::Session,
        "files" | "file" => Part::Files,
        _ => match rest.strip_prefix("profile.") {
            Some(field) if is_name(field) && !field.contains('.') => {
                Part::Profile(Some(field.into()))
            }
            _ => return Err(bad()),
        },
    };
    Ok(ResourcePattern::Person(scope, part))
}

fn parse_conditions(value: &Value) -> Result<Vec<Condition>> {
    let Value::Object(ops) = value else {
        return Err(invalid("Condition is an object of operators"));
    };
    let mut out = Vec::new();
    for (name, tests) in ops {
        let op = match name.as_str() {
            "StringEquals" => Operator::StringEquals,
            "StringNotEquals" => Operator::StringNotEquals,
            "ForAnyValue:ListIntersect" => Operator::ListIntersect,
            "Bool" => Operator::Bool,
            other => {
                return Err(invalid(format!(
                    "unknown condition operator `{other}`; known: StringEquals, StringNotEquals, ForAnyValue:ListIntersect, Bool"
                )));
            }
        };
        let Value::Object(tests) = tests else {
            return Err(invalid(format!("{name} is an object of tests")));
        };
        if tests.is_empty() {
            return Err(invalid(format!("{name} has no tests")));
        }
        for (left, right) in tests {
            let left = operand(left)?;
            let right = match (op, right) {
                (Operator::Bool, Value::Bool(b)) => vec![Operand::Literal(b.to_string())],
                (Operator::Bool, Value::String(s)) if s == "true" || s == "false" => {
                    vec![Operand::Literal(s.clone())]
                }
                (Operator::Bool, _) => return Err(invalid("Bool compares with true or false")),
                (_, v) => strings(v, name)?
                    .iter()
                    .map(|s| operand(s))
                    .collect::<Result<_>>()?,
            };
            out.push(Condition { op, left, right });
        }
    }
    Ok(out)
}

fn parse_statement(value: &Value) -> Result<Statement> {
    let Value::Object(s) = value else {
        return Err(invalid("a statement is an object"));
    };
    const KNOWN: [&str; 6] = [
        "Sid",
        "Effect",
        "Principal",
        "Action",
        "Resource",
        "Condition",
    ];
    if let Some(k) = s.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(invalid(format!(
            "unknown statement key `{k}`; known: Effect, Principal, Action, Resource, Condition, Sid"
        )));
    }
    let effect = match s.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => return Err(invalid("Effect is \"Allow\" or \"Deny\"")),
    };
    let roles = match s.get("Principal") {
        None => None,
        Some(Value::Object(p)) if p.len() == 1 && p.contains_key("Role") => {
            let roles = strings(&p["Role"], "Principal.Role")?;
            if roles.iter().any(|r| !is_name(r)) {
                return Err(invalid("a role name has letters, digits, _ - and . only"));
            }
            Some(roles)
        }
        Some(_) => return Err(invalid("Principal is {\"Role\": <name or list>}")),
    };
    let actions = strings(
        s.get("Action")
            .ok_or_else(|| invalid("a statement needs an Action"))?,
        "Action",
    )?;
    if let Some(a) = actions
        .iter()
        .find(|a| !a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'*'))
    {
        return Err(invalid(format!(
            "Action `{a}` is not a method name (letters and digits, `*` as a wildcard)"
        )));
    }
    let resources = match s.get("Resource") {
        None => vec![ResourcePattern::Any],
        Some(v) => strings(v, "Resource")?
            .iter()
            .map(|r| parse_resource(r))
            .collect::<Result<_>>()?,
    };
    let conditions = match s.get("Condition") {
        None => Vec::new(),
        Some(c) => parse_conditions(c)?,
    };
    Ok(Statement {
        effect,
        roles,
        actions,
        resources,
        conditions,
    })
}

impl Policy {
    /// Checks and reads a policy document; the error names what is wrong.
    pub fn parse(doc: &Value) -> Result<Policy> {
        let list: &[Value] = match doc {
            Value::Array(a) => a,
            Value::Object(o) if o.contains_key("Statement") => {
                if let Some(k) = o.keys().find(|k| *k != "Statement" && *k != "Version") {
                    return Err(invalid(format!("unknown key `{k}` beside Statement")));
                }
                match &o["Statement"] {
                    Value::Array(a) => a,
                    one @ Value::Object(_) => std::slice::from_ref(one),
                    _ => return Err(invalid("Statement is a statement or a list of them")),
                }
            }
            one @ Value::Object(_) => std::slice::from_ref(one),
            _ => {
                return Err(invalid(
                    "a policy is a statement, a list of them, or {\"Statement\": [...]}",
                ));
            }
        };
        if list.is_empty() || list.len() > MAX_STATEMENTS {
            return Err(invalid(format!(
                "a policy has 1 to {MAX_STATEMENTS} statements"
            )));
        }
        Ok(Policy {
            statements: list.iter().map(parse_statement).collect::<Result<_>>()?,
        })
    }

    /// Whether any condition reads the person's consents or profile (so the caller
    /// loads them only when needed).
    pub fn reads_person(&self) -> bool {
        self.statements.iter().any(|s| {
            s.conditions.iter().any(|c| {
                c.reads(|v| {
                    matches!(
                        v,
                        Variable::Agreement(_) | Variable::User(_) | Variable::PurposeConsented
                    )
                })
            })
        })
    }

    /// Whether a resource or condition reads the person's groups.
    pub fn reads_groups(&self) -> bool {
        self.statements.iter().any(|s| {
            s.resources
                .iter()
                .any(|r| matches!(r, ResourcePattern::Person(Scope::GroupMembers(_), _)))
                || s.conditions
                    .iter()
                    .any(|c| c.reads(|v| *v == Variable::TargetGroups))
        })
    }
}

/// Whether `pattern` (with `*` matching any run of characters) matches `name`.
/// Iterative, with backtracking only to the last star: O(len(pattern) × len(name))
/// at worst, whatever the stars.
pub fn glob(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut i, mut j) = (0, 0);
    // The last star seen, and where in `name` its run currently ends.
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        if p.get(i) == Some(&b'*') {
            star = Some((i, j));
            i += 1;
        } else if p.get(i) == Some(&n[j]) {
            i += 1;
            j += 1;
        } else if let Some((si, sj)) = star {
            // Let the last star take one more byte.
            star = Some((si, sj + 1));
            i = si + 1;
            j = sj + 1;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == b'*')
}

/// Whether `pattern` and `asked` share anything: a Deny of one field reaches
/// every call on the whole profile or the whole person.
fn part_overlaps(pattern: &Part, asked: &Part) -> bool {
    part_covers(pattern, asked) || part_covers(asked, pattern)
}

fn part_covers(pattern: &Part, asked: &Part) -> bool {
    match (pattern, asked) {
        (Part::All, _) => true,
        (Part::Profile(None), Part::Profile(_)) => true,
        (Part::Profile(Some(f)), Part::Profile(Some(g))) => f == g,
        (Part::Profile(Some(_)), _) => false,
        (a, b) => a == b,
    }
}

fn scope_covers(scope: &Scope, facts: &Facts) -> bool {
    match scope {
        Scope::Users => true,
        Scope::GroupMembers(role) => facts.target_groups.iter().any(|(group, held)| {
            facts.principal_groups.contains(group)
                && role
                    .as_ref()
                    .is_none_or(|r| held.as_deref() == Some(r.as_str()))
        }),
    }
}

/// Whether a statement's resource `pattern` reaches `asked`: an Allow must cover
/// all of it, a Deny only touch it.
fn resource_reaches(
    effect: Effect,
    pattern: &ResourcePattern,
    asked: &Resource,
    facts: &Facts,
) -> bool {
    match (pattern, asked) {
        (ResourcePattern::Any, _) => true,
        (ResourcePattern::Person(..), Resource::Global) => false,
        (ResourcePattern::Person(scope, part), Resource::Person(asked)) => {
            let parts = match effect {
                Effect::Allow => part_covers(part, asked),
                Effect::Deny => part_overlaps(part, asked),
            };
            parts && scope_covers(scope, facts)
        }
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn values(operand: &Operand, facts: &Facts) -> Vec<String> {
    let var = match operand {
        Operand::Literal(s) => return vec![s.clone()],
        Operand::Var(v) => v,
    };
    let many = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::Array(a)) => a.iter().filter_map(text_of).collect(),
            Some(v) => text_of(v).into_iter().collect(),
            None => Vec::new(),
        }
    };
    match var {
        Variable::RequestMetadata(key) => {
            many(facts.request_metadata.as_ref().and_then(|m| m.get(key)))
        }
        Variable::Agreement(brief) => facts.agreements.get(brief).cloned().into_iter().collect(),
        Variable::User(field) => many(facts.profile.as_ref().and_then(|p| p.get(field))),
        Variable::PrincipalGroups => facts.principal_groups.iter().cloned().collect(),
        Variable::TargetGroups => facts.target_groups.keys().cloned().collect(),
        Variable::PurposeConsented => {
            let purpose = facts
                .request_metadata
                .as_ref()
                .and_then(|m| m.get("purpose"))
                .and_then(Value::as_str);
            let agreed = purpose
                .and_then(|p| facts.agreements.get(p))
                .is_some_and(|s| s == "yes");
            vec![agreed.to_string()]
        }
    }
}

fn holds(c: &Condition, facts: &Facts) -> bool {
    let left = values(&c.left, facts);
    let right: Vec<String> = c.right.iter().flat_map(|o| values(o, facts)).collect();
    let meet = left.iter().any(|l| right.contains(l));
    match c.op {
        Operator::StringEquals | Operator::ListIntersect => meet,
        Operator::StringNotEquals => !meet,
        Operator::Bool => {
            let want = right.first().map(String::as_str) == Some("true");
            let got = left.first().map(String::as_str) == Some("true");
            !left.is_empty() && got == want
        }
    }
}

/// Whether condition `c` holds; on facts about no person, one that reads the
/// person holds for a Deny and not for an Allow.
fn condition_holds(effect: Effect, c: &Condition, facts: &Facts) -> bool {
    if !facts.person && c.reads(Variable::is_about_person) {
        return effect == Effect::Deny;
    }
    holds(c, facts)
}

fn applies(s: &Statement, caller: Caller, action: &str, asked: &Resource, facts: &Facts) -> bool {
    s.names(caller, action)
        && s.resources
            .iter()
            .any(|r| resource_reaches(s.effect, r, asked, facts))
        && s.conditions
            .iter()
            .all(|c| condition_holds(s.effect, c, facts))
}

/// The decision on `caller` doing `action` to `asked`, under `policies` (those
/// linked to the caller's roles).
pub fn decide(
    policies: &[Policy],
    caller: Caller,
    action: &str,
    asked: &Resource,
    facts: &Facts,
) -> Decision {
    let mut allow = None;
    for (p, policy) in policies.iter().enumerate() {
        for (i, s) in policy.statements.iter().enumerate() {
            if !applies(s, caller, action, asked, facts) {
                continue;
            }
            match s.effect {
                Effect::Deny => {
                    return Decision {
                        allowed: false,
                        by: Some((p, i)),
                    };
                }
                Effect::Allow => {
                    allow = allow.or(Some((p, i)));
                }
            }
        }
    }
    Decision {
        allowed: allow.is_some(),
        by: allow,
    }
}

/// Whether some Allow statement of `policies` names `action` for `caller`,
/// whatever it reaches and whatever its conditions.
pub fn may_allow(policies: &[Policy], caller: Caller, action: &str) -> bool {
    policies
        .iter()
        .flat_map(|p| &p.statements)
        .any(|s| s.effect == Effect::Allow && s.names(caller, action))
}

/// A profile as `caller` may see it: fields it may not read become `"***"` when
/// they are strings and are left out otherwise. `None` when it may read no field
/// (nor, for an empty profile, the profile as a whole). The decisions a policy
/// made (each allow, and each explicit deny), for the audit.
pub fn mask_profile(
    policies: &[Policy],
    caller: Caller,
    action: &str,
    profile: &Map<String, Value>,
    facts: &Facts,
) -> (Option<Map<String, Value>>, Vec<Decision>) {
    let mut out = Map::new();
    let mut allowed = Vec::new();
    let mut any = false;
    for (field, value) in profile {
        let part = Part::Profile(Some(field.clone()));
        let d = decide(policies, caller, action, &Resource::Person(&part), facts);
        if d.allowed || d.by.is_some() {
            allowed.push(d);
        }
        if d.allowed {
            any = true;
            out.insert(field.clone(), value.clone());
        } else if value.is_string() {
            out.insert(field.clone(), Value::from("***"));
        }
    }
    if profile.is_empty() {
        let whole = Part::Profile(None);
        let d = decide(policies, caller, action, &Resource::Person(&whole), facts);
        if d.allowed {
            any = true;
            allowed.push(d);
        }
    }
    (any.then_some(out), allowed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(doc: Value) -> Policy {
        match Policy::parse(&doc) {
            Ok(p) => p,
            Err(e) => panic!("{doc}: {e}"),
        }
    }

    fn facts(extra: Value) -> Facts {
        let mut f = Facts {
            request_metadata: extra.get("md").cloned(),
            profile: extra.get("profile").cloned(),
            person: extra.get("noperson").is_none(),
            ..Facts::default()
        };
        if let Some(Value::Object(a)) = extra.get("agreements") {
            for (k, v) in a {
                f.agreements
                    .insert(k.clone(), v.as_str().unwrap_or("").into());
            }
        }
        if let Some(Value::Array(g)) = extra.get("mine") {
            f.principal_groups = g
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect();
        }
        if let Some(Value::Object(g)) = extra.get("theirs") {
            for (k, v) in g {
                f.target_groups
                    .insert(k.clone(), v.as_str().map(String::from));
            }
        }
        f
    }

    /// One row of the decision table: policies, roles, action, resource, facts,
    /// and the expected answer with the (policy, statement) that gives it.
    struct Row {
        name: &'static str,
        policies: Vec<Value>,
        roles: &'static [&'static str],
        action: &'static str,
        resource: Option<Part>,
        facts: Value,
        allowed: bool,
        by: Option<(usize, usize)>,
    }

    fn row(
        name: &'static str,
        policies: Vec<Value>,
        action: &'static str,
        resource: Option<Part>,
        allowed: bool,
        by: Option<(usize, usize)>,
    ) -> Row {
        Row {
            name,
            policies,
            roles: &["support"],
            action,
            resource,
            facts: json!({}),
            allowed,
            by,
        }
    }

    fn field(f: &str) -> Option<Part> {
        Some(Part::Profile(Some(f.into())))
    }

    #[test]
    fn the_decision_table() {
        let allow_get =
            json!({"Effect": "Allow", "Action": "UserGet", "Resource": "users.profile"});
        let deny_get = json!({"Effect": "Deny", "Action": "UserGet", "Resource": "users.profile"});
        let marketing = json!({"Effect": "Allow", "Action": "UserGet", "Resource": "users.profile.email",
            "Condition": {"StringEquals": {"${request_metadata:purpose}": "marketing"}, "Bool": {"${purpose_consented}": true}}});
        let mut rows = vec![
            row(
                "nothing applies: default deny",
                vec![],
                "UserGet",
                field("email"),
                false,
                None,
            ),
            row(
                "allow",
                vec![allow_get.clone()],
                "UserGet",
                field("email"),
                true,
                Some((0, 0)),
            ),
            row(
                "another action",
                vec![allow_get.clone()],
                "UserDelete",
                field("email"),
                false,
                None,
            ),
            row(
                "deny alone",
                vec![deny_get.clone()],
                "UserGet",
                field("email"),
                false,
                Some((0, 0)),
            ),
            row(
                "deny wins over an earlier allow",
                vec![allow_get.clone(), deny_get.clone()],
                "UserGet",
                field("email"),
                false,
                Some((1, 0)),
            ),
            row(
                "deny wins over a later allow",
                vec![deny_get.clone(), allow_get.clone()],
                "UserGet",
                field("email"),
                false,
                Some((0, 0)),
            ),
            row(
                "deny of one field",
                vec![
                    allow_get.clone(),
                    json!({"Effect": "Deny", "Action": "*", "Resource": "users.profile.ssn"}),
                ],
                "UserGet",
                field("ssn"),
                false,
                Some((1, 0)),
            ),
            row(
                "deny of one field leaves the others",
                vec![
                    allow_get.clone(),
                    json!({"Effect": "Deny", "Action": "*", "Resource": "users.profile.ssn"}),
                ],
                "UserGet",
                field("email"),
                true,
                Some((0, 0)),
            ),
            row(
                "deny of one field refuses a change of the whole profile",
                vec![
                    json!({"Effect": "Allow", "Action": "*", "Resource": "users.*"}),
                    json!({"Effect": "Deny", "Action": "*", "Resource": "users.profile.ssn"}),
                ],
                "UserUpdate",
                Some(Part::Profile(None)),
                false,
                Some((1, 0)),
            ),
            row(
                "deny of one field refuses what reaches the whole person",
                vec![
                    json!({"Effect": "Allow", "Action": "*", "Resource": "users.*"}),
                    json!({"Effect": "Deny", "Action": "*", "Resource": "users.profile.ssn"}),
                ],
                "SystemGetUserReport",
                Some(Part::All),
                false,
                Some((1, 0)),
            ),
            row(
                "deny of the profile does not reach appdata",
                vec![
                    json!({"Effect": "Allow", "Action": "*", "Resource": "users.*"}),
                    json!({"Effect": "Deny", "Action": "*", "Resource": "users.profile"}),
                ],
                "AppdataGet",
                Some(Part::AppData),
                true,
                Some((0, 0)),
            ),
            row(
                "wildcard action prefix",
                vec![json!({"Effect": "Allow", "Action": "User*", "Resource": "users.*"})],
                "UserGet",
                field("x"),
                true,
                Some((0, 0)),
            ),
            row(
                "wildcard action suffix",
                vec![json!({"Effect": "Allow", "Action": "*Get", "Resource": "*"})],
                "TokenGet",
                None,
                true,
                Some((0, 0)),
            ),
            row(
                "wildcard does not reach another method",
                vec![json!({"Effect": "Allow", "Action": "*Get", "Resource": "*"})],
                "TokenDelete",
                None,
                false,
                None,
            ),
            row(
                "one field allowed",
                vec![
                    json!({"Effect": "Allow", "Action": "UserGet", "Resource": "users.profile.name"}),
                ],
                "UserGet",
                field("name"),
                true,
                Some((0, 0)),
            ),
            row(
                "another field not",
                vec![
                    json!({"Effect": "Allow", "Action": "UserGet", "Resource": "users.profile.name"}),
                ],
                "UserGet",
                field("email"),
                false,
                None,
            ),
            row(
                "a field resource does not cover the whole profile",
                vec![
                    json!({"Effect": "Allow", "Action": "UserUpdate", "Resource": "users.profile.name"}),
                ],
                "UserUpdate",
                Some(Part::Profile(None)),
                false,
                None,
            ),
            row(
                "profile.* covers the whole profile",
                vec![
                    json!({"Effect": "Allow", "Action": "UserUpdate", "Resource": "users.profile.*"}),
                ],
                "UserUpdate",
                Some(Part::Profile(None)),
                true,
                Some((0, 0)),
            ),
            row(
                "a person resource does not cover global calls",
                vec![json!({"Effect": "Allow", "Action": "*", "Resource": "users.*"})],
                "TokenGet",
                None,
                false,
                None,
            ),
            row(
                "* covers global calls",
                vec![json!({"Effect": "Allow", "Action": "TokenGet"})],
                "TokenGet",
                None,
                true,
                Some((0, 0)),
            ),
            row(
                "appdata is not the profile",
                vec![json!({"Effect": "Allow", "Action": "*", "Resource": "users.appdata"})],
                "AppdataGet",
                Some(Part::Profile(None)),
                false,
                None,
            ),
            row(
                "appdata",
                vec![json!({"Effect": "Allow", "Action": "*", "Resource": "users.appdata"})],
                "AppdataGet",
                Some(Part::AppData),
                true,
                Some((0, 0)),
            ),
            row(
                "consent is agreement",
                vec![json!({"Effect": "Allow", "Action": "*", "Resource": "users.consent"})],
                "AgreementGet",
                Some(Part::Agreement),
                true,
                Some((0, 0)),
            ),
            row(
                "principal role matches",
                vec![
                    json!({"Effect": "Allow", "Principal": {"Role": ["support", "x"]}, "Action": "*"}),
                ],
                "TokenGet",
                None,
                true,
                Some((0, 0)),
            ),
            row(
                "principal role does not match",
                vec![json!({"Effect": "Allow", "Principal": {"Role": "auditor"}, "Action": "*"})],
                "TokenGet",
                None,
                false,
                None,
            ),
            row(
                "Statement wrapper, second statement",
                vec![
                    json!({"Version": "2012-10-17", "Statement": [deny_get.clone(), {"Effect": "Allow", "Action": "TokenGet"}]}),
                ],
                "TokenGet",
                None,
                true,
                Some((0, 1)),
            ),
        ];
        let mut more = vec![
            Row {
                facts: json!({"noperson": true}),
                ..row(
                    "a condition on the person: an Allow does not apply to a global call",
                    vec![json!({"Effect": "Allow", "Action": "*",
                        "Condition": {"StringNotEquals": {"${agreement:marketing}": "no"}}})],
                    "TokenGet",
                    None,
                    false,
                    None,
                )
            },
            Row {
                facts: json!({"noperson": true}),
                ..row(
                    "a condition on the person: a Deny applies to a global call",
                    vec![
                        json!({"Effect": "Allow", "Action": "TokenGet"}),
                        json!({"Effect": "Deny", "Action": "*",
                            "Condition": {"StringEquals": {"${user:country}": "FR"}}}),
                    ],
                    "TokenGet",
                    None,
                    false,
                    Some((1, 0)),
                )
            },
            Row {
                facts: json!({"md": {"purpose": "marketing"}, "agreements": {"marketing": "yes"}}),
                ..row(
                    "consent condition: agreed",
                    vec![marketing.clone()],
                    "UserGet",
                    field("email"),
                    true,
                    Some((0, 0)),
                )
            },
            Row {
                facts: json!({"md": {"purpose": "marketing"}, "agreements": {"marketing": "no"}}),
                ..row(
                    "consent condition: refused",
                    vec![marketing.clone()],
                    "UserGet",
                    field("email"),
                    false,
                    None,
                )
            },
            Row {
                facts: json!({"md": {"purpose": "marketing"}}),
                ..row(
                    "consent condition: never asked",
                    vec![marketing.clone()],
                    "UserGet",
                    field("email"),
                    false,
                    None,
                )
            },
            Row {
                facts: json!({"md": {"purpose": "support"}, "agreements": {"support": "yes"}}),
                ..row(
                    "consent condition: another purpose",
                    vec![marketing.clone()],
                    "UserGet",
                    field("email"),
                    false,
                    None,
                )
            },
            Row {
                facts: json!({"agreements": {"marketing": "yes"}}),
                ..row(
                    "consent condition: no purpose",
                    vec![marketing.clone()],
                    "UserGet",
                    field("email"),
                    false,
                    None,
                )
            },
            Row {
                facts: json!({"md": {"purpose": "marketing"}, "agreements": {"marketing": "yes"}}),
                ..row(
                    "consent condition covers only its field",
                    vec![marketing.clone()],
                    "UserGet",
                    field("name"),
                    false,
                    None,
                )
            },
            Row {
                facts: json!({"md": {"purpose": ["education", "x"]}}),
                ..row(
                    "StringEquals with lists on both sides",
                    vec![
                        json!({"Effect": "Allow", "Action": "*", "Condition": {"StringEquals": {"${request_metadata:purpose}": ["education", "child-welfare"]}}}),
                    ],
                    "TokenGet",
                    None,
                    true,
                    Some((0, 0)),
                )
            },
            Row {
                facts: json!({"md": {"purpose": "sales"}}),
                ..row(
                    "StringEquals fails",
                    vec![
                        json!({"Effect": "Allow", "Action": "*", "Condition": {"StringEquals": {"${request_metadata:purpose}": ["education", "child-welfare"]}}}),
                    ],
                    "TokenGet",
                    None,
                    false,
                    None,
                )
            },
            Row {
                facts: json!({}),
                ..row(
                    "StringEquals on a missing value fails",
                    vec![
                        json!({"Effect": "Allow", "Action": "*", "Condition": {"StringEquals": {"${request_metadata:purpose}": "x"}}}),
                    ],
                    "TokenGet",
                    None,
                    false,
                    None,
                )
            },
            Row {
                facts: json!({"md": {"purpose": "sales"}}),
                ..row(
                    "StringNotEquals",
                    vec![
                        json!({"Effect": "Deny", "Action": "*", "Condition": {"StringNotEquals": {"${request_metadata:purpose}": "audit"}}}),
                        json!({"Effect": "Allow", "Action": "*"}),
                    ],
                    "TokenGet",
                    None,
                    false,
                    Some((0, 0)),
                )
            },
            Row {
                facts: json!({"md": {"purpose": "audit"}}),
                ..row(
                    "StringNotEquals does not apply",
                    vec![
                        json!({"Effect": "Deny", "Action": "*", "Condition": {"StringNotEquals": {"${request_metadata:purpose}": "audit"}}}),
                        json!({"Effect": "Allow", "Action": "*"}),
                    ],
                    "TokenGet",
                    None,
                    true,
                    Some((1, 0)),
                )
            },
            Row {
                facts: json!({"mine": ["7", "9"], "theirs": {"9": "child"}}),
                ..row(
                    "ListIntersect of groups",
                    vec![
                        json!({"Effect": "Allow", "Action": "*", "Resource": "users.*", "Condition": {"ForAnyValue:ListIntersect": {"${principal_group_id}": "${target_group_id}"}}}),
                    ],
                    "UserGet",
                    field("name"),
                    true,
                    Some((0, 0)),
                )
            },
            Row {
                facts: json!({"mine": ["7"], "theirs": {"9": "child"}}),
                ..row(
                    "ListIntersect without a shared group",
                    vec![
                        json!({"Effect": "Allow", "Action": "*", "Resource": "users.*", "Condition": {"ForAnyValue:ListIntersect": {"${principal_group_id}": "${target_group_id}"}}}),
                    ],
                    "UserGet",
                    field("name"),
                    false,
                    None,
                )
            },
            Row {
                facts: json!({"mine": ["9"], "theirs": {"9": "child"}}),
                ..row(
                    "group members with a role",
                    vec![
                        json!({"Effect": "Allow", "Action": "UserGet", "Resource": "${target_group_members:role/child}.profile.name"}),
                    ],
                    "UserGet",
                    field("name"),
                    true,
                    Some((0, 0)),
                )
            },
            Row {
                facts: json!({"mine": ["9"], "theirs": {"9": "parent"}}),
                ..row(
                    "group members with another role",
                    vec![
                        json!({"Effect": "Allow", "Action": "UserGet", "Resource": "${target_group_members:role/child}.profile.name"}),
                    ],
                    "UserGet",
                    field("name"),
                    false,
                    None,
                )
            },
            Row {
                facts: json!({"mine": ["3"], "theirs": {"9": "child"}}),
                ..row(
                    "not a member of the same group",
                    vec![
                        json!({"Effect": "Allow", "Action": "UserGet", "Resource": "${target_group_members}.profile"}),
                    ],
                    "UserGet",
                    field("name"),
                    false,
                    None,
                )
            },
            Row {
                facts: json!({"profile": {"vip": true}}),
                ..row(
                    "Bool on a profile field",
                    vec![
                        json!({"Effect": "Deny", "Action": "*", "Resource": "users.*", "Condition": {"Bool": {"${user:vip}": "true"}}}),
                        allow_get.clone(),
                    ],
                    "UserGet",
                    field("name"),
                    false,
                    Some((0, 0)),
                )
            },
            Row {
                facts: json!({"profile": {"vip": false}}),
                ..row(
                    "Bool false",
                    vec![
                        json!({"Effect": "Deny", "Action": "*", "Resource": "users.*", "Condition": {"Bool": {"${user:vip}": true}}}),
                        allow_get.clone(),
                    ],
                    "UserGet",
                    field("name"),
                    true,
                    Some((1, 0)),
                )
            },
            Row {
                facts: json!({"agreements": {"research": "yes"}}),
                ..row(
                    "an agreement variable",
                    vec![
                        json!({"Effect": "Allow", "Action": "*", "Resource": "users.*", "Condition": {"StringEquals": {"${agreement:research}": "yes"}}}),
                    ],
                    "UserGet",
                    field("name"),
                    true,
                    Some((0, 0)),
                )
            },
        ];
        rows.append(&mut more);
        for r in rows {
            let policies: Vec<Policy> = r.policies.iter().cloned().map(policy).collect();
            let roles: Vec<String> = r.roles.iter().map(|s| s.to_string()).collect();
            let asked = match &r.resource {
                Some(p) => Resource::Person(p),
                None => Resource::Global,
            };
            let d = decide(
                &policies,
                Caller { roles: &roles },
                r.action,
                &asked,
                &facts(r.facts.clone()),
            );
            assert_eq!(
                d,
                Decision {
                    allowed: r.allowed,
                    by: r.by
                },
                "{}",
                r.name
            );
        }
    }

    #[test]
    fn masking_stars_strings_and_drops_the_rest() {
        let p = vec![policy(
            json!({"Effect": "Allow", "Action": "UserGet", "Resource": "users.profile.name"}),
        )];
        let roles = vec!["support".to_string()];
        let profile = json!({"name": "Ann", "email": "ann@x.org", "age": 40, "tags": ["a"], "vip": true, "address": {"city": "Oslo"}});
        let (seen, by) = mask_profile(
            &p,
            Caller { roles: &roles },
            "UserGet",
            profile.as_object().unwrap(),
            &Facts::default(),
        );
        assert_eq!(
            Value::Object(seen.unwrap()),
            json!({"name": "Ann", "email": "***"})
        );
        assert_eq!(
            by,
            vec![Decision {
                allowed: true,
                by: Some((0, 0))
            }]
        );
        // Nothing readable: no profile at all.
        let (seen, _) = mask_profile(
            &p,
            Caller { roles: &roles },
            "UserGet",
            json!({"email": "a@b.c"}).as_object().unwrap(),
            &Facts::default(),
        );
        assert!(seen.is_none());
        let (seen, _) = mask_profile(
            &p,
            Caller { roles: &roles },
            "UserDelete",
            profile.as_object().unwrap(),
            &Facts::default(),
        );
        assert!(seen.is_none());
    }

    #[test]
    fn globs() {
        for (p, n, want) in [
            ("*", "UserGet", true),
            ("User*", "UserGet", true),
            ("User*", "AUserGet", false),
            ("*Get", "UserGet", true),
            ("*Get", "UserGetX", false),
            ("U*r*t", "UserGet", true),
            ("UserGet", "UserGet", true),
            ("UserGet", "UserGe", false),
            ("**", "", true),
            ("*a*b", "xaxb", true),
            ("a*a", "a", false),
            ("*é*", "café", true),
            ("", "", true),
            ("", "x", false),
        ] {
            assert_eq!(glob(p, n), want, "{p} {n}");
        }
        // Many stars against a long near-miss: answered at once, not in 2^n steps.
        let stars = "*a".repeat(40);
        let name = "a".repeat(39) + &"b".repeat(4000);
        let started = std::time::Instant::now();
        assert!(!glob(&stars, &name));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn bad_policies_are_refused_with_a_reason() {
        for (doc, says) in [
            (json!("Allow"), "a policy is"),
            (json!([]), "1 to 100"),
            (json!({"Action": "UserGet"}), "Effect"),
            (json!({"Effect": "Permit", "Action": "UserGet"}), "Effect"),
            (json!({"Effect": "Allow"}), "needs an Action"),
            (json!({"Effect": "Allow", "Action": []}), "Action is"),
            (
                json!({"Effect": "Allow", "Action": "User Get"}),
                "not a method name",
            ),
            (
                json!({"Effect": "Allow", "Action": "*", "Resource": "*.profile"}),
                "unknown resource",
            ),
            (
                json!({"Effect": "Allow", "Action": "*", "Resource": "users.profile.a.b"}),
                "unknown resource",
            ),
            (
                json!({"Effect": "Allow", "Action": "*", "Resource": "users.secrets"}),
                "unknown resource",
            ),
            (
                json!({"Effect": "Allow", "Action": "*", "Principal": "support"}),
                "Principal",
            ),
            (
                json!({"Effect": "Allow", "Action": "*", "Condition": {"NumericLessThan": {"a": "1"}}}),
                "unknown condition operator",
            ),
            (
                json!({"Effect": "Allow", "Action": "*", "Condition": {"StringEquals": {"${session:id}": "1"}}}),
                "unknown variable",
            ),
            (
                json!({"Effect": "Allow", "Action": "*", "Condition": {"StringEquals": {"${request_metadata:purpose": "1"}}}),
                "not a variable",
            ),
            (
                json!({"Effect": "Allow", "Action": "*", "Condition": {"Bool": {"${purpose_consented}": "yes"}}}),
                "true or false",
            ),
            (
                json!({"Effect": "Allow", "Action": "*", "Condition": {"StringEquals": {}}}),
                "no tests",
            ),
            (
                json!({"Effect": "Allow", "Action": "*", "Actions": "x"}),
                "unknown statement key",
            ),
            (json!({"Statement": [], "Extra": 1}), "unknown key"),
        ] {
            let e = Policy::parse(&doc).expect_err(&doc.to_string());
            assert!(e.message.contains(says), "{doc}: {}", e.message);
            assert!(
                e.message.starts_with("The policy is not valid: "),
                "{}",
                e.message
            );
        }
        assert!(policy(json!({"Effect": "Allow", "Action": "*", "Condition": {"Bool": {"${purpose_consented}": true}}})).reads_person());
        assert!(!policy(json!({"Effect": "Allow", "Action": "*"})).reads_person());
    }
}
