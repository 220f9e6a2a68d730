//! Groups, roles, policies and role access tokens over v2, on every backend: the
//! catalogue methods and their refusals, and what a role token may see and do
//! under its policies (field masking, deny over allow, the consent condition, the
//! decisions in the audit log).

use serde_json::{Value, json};

use crate::backend_tests;
use crate::harness::{Backend, Body, Reply, Server};

backend_tests!(
    groups_roles_and_policies_over_v2,
    a_role_token_sees_what_its_policies_allow,
    a_deny_reaches_every_method_that_holds_the_field,
    a_person_s_token_carries_their_group_roles,
);

fn v2(s: &Server, method: &str, body: Value) -> Reply {
    s.call("POST", &format!("/v2/{method}"), Body::Json(body))
}

fn as_token(s: &Server, token: &str, method: &str, body: Value) -> Reply {
    s.call_as(
        Some(token),
        "POST",
        &format!("/v2/{method}"),
        Body::Json(body),
    )
}

fn text(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .to_string()
}

fn groups_roles_and_policies_over_v2(b: &Backend) {
    let s = Server::start_with(b, &["--list-users", "true"]);
    let ann = s.create_user(json!({"login": "ann", "name": "Ann"}));
    s.create_user(json!({"login": "bo", "name": "Bo"}));
    // Groups.
    let g = v2(
        &s,
        "GroupCreate",
        json!({"groupname": "class-7", "groupdesc": "Year 7"}),
    )
    .expect(200);
    let gid = g["groupid"].as_i64().unwrap();
    let r = v2(&s, "GroupCreate", json!({"groupname": "class-7"}));
    assert_eq!(r.status, 409, "{}", r.json);
    assert_eq!(v2(&s, "GroupCreate", json!({})).status, 400);
    assert_eq!(
        v2(
            &s,
            "GroupCreate",
            json!({"groupname": "x", "grouptype": "t".repeat(31)})
        )
        .status,
        400
    );
    let got = v2(&s, "GroupGet", json!({"groupname": "class-7"})).expect(200);
    assert_eq!(got["groupid"], gid);
    assert_eq!(got["groupdesc"], "Year 7");
    assert_eq!(got["grouptype"], "users");
    assert_eq!(
        v2(&s, "GroupGet", json!({"groupid": gid.to_string()})).expect(200)["groupname"],
        "class-7"
    );
    assert_eq!(v2(&s, "GroupGet", json!({"groupid": 99})).status, 404);
    assert_eq!(v2(&s, "GroupGet", json!({})).status, 400);
    v2(
        &s,
        "GroupUpdate",
        json!({"groupid": gid, "groupname": "class-8", "groupdesc": "Year 8"}),
    )
    .expect(200);
    assert_eq!(
        v2(&s, "GroupGet", json!({"groupname": "class-7"})).status,
        404
    );
    assert_eq!(
        v2(&s, "GroupGet", json!({"groupname": "class-8"})).expect(200)["groupdesc"],
        "Year 8"
    );
    let g2 = v2(&s, "GroupCreate", json!({"groupname": "staff"})).expect(200)["groupid"]
        .as_i64()
        .unwrap();
    assert_eq!(
        v2(
            &s,
            "GroupUpdate",
            json!({"groupid": g2, "groupname": "class-8"})
        )
        .status,
        409
    );
    let all = v2(&s, "GroupListAllGroups", json!({})).expect(200);
    assert_eq!(all["total"], 2);
    // Roles and policies.
    let teacher = v2(
        &s,
        "RoleCreate",
        json!({"rolename": "teacher", "roledesc": "teaches"}),
    )
    .expect(200)["roleid"]
        .as_i64()
        .unwrap();
    let r = v2(&s, "RoleCreate", json!({"rolename": "teacher"}));
    assert_eq!(r.status, 409);
    assert_eq!(r.json["message"], "The role record already exists");
    let child = v2(&s, "RoleCreate", json!({"rolename": "child"})).expect(200)["roleid"]
        .as_i64()
        .unwrap();
    v2(
        &s,
        "RoleUpdate",
        json!({"roleid": teacher, "roledesc": "teaches well"}),
    )
    .expect(200);
    v2(
        &s,
        "RoleUpdate",
        json!({"rolename": "teacher", "roledesc": "by name"}),
    )
    .expect(200);
    assert_eq!(
        v2(&s, "RoleUpdate", json!({"rolename": "nobody"})).status,
        404
    );
    let doc = json!({"Effect": "Allow", "Principal": {"Role": "teacher"}, "Action": ["UserGet", "BulkListGroupUsers"], "Resource": "${target_group_members:role/child}.profile.name"});
    let pid = v2(
        &s,
        "PolicyCreate",
        json!({"policyname": "read-names", "policydesc": "names", "policy": doc}),
    )
    .expect(200)["policyid"]
        .as_i64()
        .unwrap();
    let p = v2(&s, "PolicyGet", json!({"policyname": "read-names"})).expect(200);
    assert_eq!(p["policy"], doc);
    assert_eq!(p["policyid"], pid);
    // Invalid policies are refused with the reason, and nothing is stored.
    for (bad, says) in [
        (json!({"Effect": "Maybe", "Action": "UserGet"}), "Effect"),
        (
            json!({"Effect": "Allow", "Action": "UserGet", "Resource": "*.profile"}),
            "unknown resource",
        ),
        (
            json!({"Effect": "Allow", "Action": "*", "Condition": {"IpAddress": {}}}),
            "unknown condition operator",
        ),
        (json!("Allow everything"), "a policy is"),
    ] {
        let r = v2(
            &s,
            "PolicyCreate",
            json!({"policyname": "bad", "policy": bad}),
        );
        assert_eq!(r.status, 400, "{bad}");
        assert!(
            r.json["message"].as_str().unwrap().contains(says),
            "{}",
            r.json
        );
    }
    assert_eq!(
        v2(&s, "PolicyGet", json!({"policyname": "bad"})).status,
        404
    );
    assert_eq!(
        v2(&s, "PolicyCreate", json!({"policyname": "nodoc"})).status,
        400
    );
    v2(
        &s,
        "PolicyUpdate",
        json!({"policyid": pid, "policydesc": "names of children"}),
    )
    .expect(200);
    assert_eq!(
        v2(
            &s,
            "PolicyUpdate",
            json!({"policyid": pid, "policy": {"Effect": "Allow"}})
        )
        .status,
        400
    );
    let list = v2(&s, "PolicyListAllPolicies", json!({})).expect(200);
    assert_eq!(
        list["rows"],
        json!([{"policyid": pid, "policyname": "read-names", "policydesc": "names of children"}])
    );
    v2(
        &s,
        "RoleLinkPolicy",
        json!({"rolename": "teacher", "policyid": pid}),
    )
    .expect(200);
    assert_eq!(
        v2(
            &s,
            "RoleLinkPolicy",
            json!({"rolename": "teacher", "policyid": 42})
        )
        .status,
        404
    );
    // Memberships.
    v2(
        &s,
        "GroupAddUser",
        json!({"mode": "login", "identity": "ann", "groupid": gid, "rolename": "child"}),
    )
    .expect(200);
    v2(
        &s,
        "GroupAddUser",
        json!({"mode": "login", "identity": "bo", "groupname": "class-8", "roleid": child}),
    )
    .expect(200);
    v2(
        &s,
        "GroupAddUser",
        json!({"mode": "login", "identity": "bo", "groupname": "staff"}),
    )
    .expect(200);
    assert_eq!(
        v2(
            &s,
            "GroupAddUser",
            json!({"mode": "login", "identity": "nobody", "groupid": gid})
        )
        .status,
        404
    );
    assert_eq!(
        v2(
            &s,
            "GroupAddUser",
            json!({"mode": "login", "identity": "bo", "groupid": 77})
        )
        .status,
        404
    );
    // UserCreate with a group and a role: the new person joins it; an unknown
    // group refuses the whole call.
    v2(
        &s,
        "UserCreate",
        json!({"profile": {"login": "cy"}, "groupname": "staff", "rolename": "teacher"}),
    )
    .expect(200);
    let cy = v2(
        &s,
        "GroupListUserGroups",
        json!({"mode": "login", "identity": "cy"}),
    )
    .expect(200);
    assert_eq!(cy["rows"][0]["groupname"], "staff");
    assert_eq!(cy["rows"][0]["rolename"], "teacher");
    let r = v2(
        &s,
        "UserCreate",
        json!({"profile": {"login": "di"}, "groupname": "nowhere"}),
    );
    assert_eq!(r.status, 404, "{}", r.json);
    assert_eq!(
        v2(&s, "UserGet", json!({"mode": "login", "identity": "di"})).status,
        404
    );
    let mine = v2(
        &s,
        "GroupListUserGroups",
        json!({"mode": "token", "identity": ann}),
    )
    .expect(200);
    assert_eq!(mine["total"], 1);
    assert_eq!(mine["rows"][0]["groupname"], "class-8");
    assert_eq!(mine["rows"][0]["rolename"], "child");
    let unlock = text(
        &v2(&s, "BulkListUnlock", json!({})).expect(200),
        "unlockuuid",
    );
    let members = v2(
        &s,
        "BulkListGroupUsers",
        json!({"unlockuuid": unlock, "groupid": gid}),
    )
    .expect(200);
    assert_eq!(members["total"], 2);
    let names: Vec<&str> = members["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["profile"]["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Ann") && names.contains(&"Bo"), "{members}");
    assert!(
        members["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["rolename"] == "child")
    );
    assert_eq!(
        v2(&s, "BulkListGroupUsers", json!({"groupid": gid})).status,
        403
    );
    v2(
        &s,
        "GroupDeleteUser",
        json!({"mode": "login", "identity": "bo", "groupid": gid}),
    )
    .expect(200);
    let members = v2(
        &s,
        "BulkListGroupUsers",
        json!({"unlockuuid": unlock, "groupid": gid}),
    )
    .expect(200);
    assert_eq!(members["total"], 1);
    // Erasing a person removes their memberships.
    v2(
        &s,
        "UserDelete",
        json!({"mode": "login", "identity": "ann"}),
    )
    .expect(200);
    let members = v2(
        &s,
        "BulkListGroupUsers",
        json!({"unlockuuid": unlock, "groupid": gid}),
    )
    .expect(200);
    assert_eq!(members["total"], 0, "{members}");
    // Deleting a group: gone, its id not reused.
    v2(&s, "GroupDelete", json!({"groupname": "class-8"})).expect(200);
    assert_eq!(v2(&s, "GroupGet", json!({"groupid": gid})).status, 404);
    let again = v2(&s, "GroupCreate", json!({"groupname": "class-8"})).expect(200)["groupid"]
        .as_i64()
        .unwrap();
    assert!(again > g2, "{again}");
    // Tokens: a person's own, and a role's.
    let x = v2(
        &s,
        "XTokenCreateForUser",
        json!({"mode": "login", "identity": "bo", "finaltime": "1h"}),
    )
    .expect(200);
    let bo_token = text(&x, "token");
    let own = as_token(
        &s,
        &text(&x, "xtoken"),
        "UserGet",
        json!({"mode": "token", "identity": bo_token}),
    )
    .expect(200);
    assert_eq!(own["profile"]["name"], "Bo");
    let rt = v2(&s, "XTokenCreateForRole", json!({"rolename": "teacher"})).expect(200);
    assert!(rt["xtoken"].is_string());
    assert_eq!(
        v2(&s, "XTokenCreateForRole", json!({"rolename": "nobody"})).status,
        404
    );
    // Only the main tenant's root manages roles and policies; tenants use them.
    let t = v2(
        &s,
        "TenantCreate",
        json!({"tenantname": "school", "tenantorg": "School"}),
    )
    .expect(200);
    let admin = text(&t, "xtoken");
    let in_tenant = |method: &str, body: Value| {
        s.call_with(
            Some(&admin),
            "POST",
            &format!("/v2/{method}"),
            &[("X-Bunker-Tenant", "school")],
            Body::Json(body),
        )
    };
    assert_eq!(
        in_tenant("RoleCreate", json!({"rolename": "x"})).status,
        403
    );
    assert_eq!(
        in_tenant(
            "PolicyCreate",
            json!({"policyname": "x", "policy": {"Effect": "Allow", "Action": "*"}})
        )
        .status,
        403
    );
    assert_eq!(
        in_tenant(
            "RoleLinkPolicy",
            json!({"roleid": teacher, "policyid": pid})
        )
        .status,
        403
    );
    assert_eq!(
        in_tenant("PolicyGet", json!({"policyid": pid})).expect(200)["policyname"],
        "read-names"
    );
    // Groups are the tenant's own.
    assert_eq!(
        in_tenant("GroupListAllGroups", json!({})).expect(200)["total"],
        0
    );
    in_tenant("GroupCreate", json!({"groupname": "staff"})).expect(200);
    in_tenant("XTokenCreateForRole", json!({"roleid": teacher})).expect(200);
    // A person's token may not manage anything.
    let x = text(&x, "xtoken");
    assert_eq!(
        as_token(&s, &x, "GroupCreate", json!({"groupname": "mine"})).status,
        403
    );
    assert_eq!(
        as_token(&s, &x, "XTokenCreateForRole", json!({"roleid": teacher})).status,
        403
    );
}

fn a_role_token_sees_what_its_policies_allow(b: &Backend) {
    let s = Server::start_with(b, &["--list-users", "true", "--search", "true"]);
    let ann = s.create_user(
        json!({"login": "ann", "name": "Ann", "email": "ann@example.com", "age": 40, "ssn": "123"}),
    );
    let bo = s.create_user(
        json!({"login": "bo", "name": "Bo", "email": "bo@example.com", "age": 30, "ssn": "456"}),
    );
    v2(
        &s,
        "LegalBasisCreate",
        json!({"brief": "marketing", "basistype": "consent"}),
    )
    .expect(200);
    v2(
        &s,
        "AgreementAccept",
        json!({"mode": "token", "identity": ann, "brief": "marketing"}),
    )
    .expect(200);
    v2(
        &s,
        "AgreementAccept",
        json!({"mode": "token", "identity": bo, "brief": "marketing", "status": "no"}),
    )
    .expect(200);
    let policy = |name: &str, doc: Value| -> i64 {
        v2(
            &s,
            "PolicyCreate",
            json!({"policyname": name, "policy": doc}),
        )
        .expect(200)["policyid"]
            .as_i64()
            .unwrap()
    };
    let names = policy(
        "names",
        json!({"Effect": "Allow", "Action": ["UserGet", "BulkListAllUsers", "UserSearch"], "Resource": "users.profile.name"}),
    );
    let unlock = policy(
        "unlock",
        json!({"Effect": "Allow", "Action": "BulkListUnlock"}),
    );
    let email = policy(
        "marketing-email",
        json!({
        "Effect": "Allow", "Action": "UserGet", "Resource": "users.profile.email",
        "Condition": {"StringEquals": {"${request_metadata:purpose}": "marketing"}, "Bool": {"${purpose_consented}": true}}}),
    );
    let no_ssn = policy(
        "no-ssn",
        json!({"Effect": "Deny", "Action": "*", "Resource": "users.profile.ssn"}),
    );
    let everything = policy(
        "everything",
        json!({"Effect": "Allow", "Action": "UserGet", "Resource": "users.profile"}),
    );
    v2(&s, "RoleCreate", json!({"rolename": "support"})).expect(200);
    for p in [names, unlock, email] {
        v2(
            &s,
            "RoleLinkPolicy",
            json!({"rolename": "support", "policyid": p}),
        )
        .expect(200);
    }
    let x = text(
        &v2(
            &s,
            "XTokenCreateForRole",
            json!({"rolename": "support", "finaltime": "1h"}),
        )
        .expect(200),
        "xtoken",
    );
    let get = |who: &str, md: Value| {
        as_token(
            &s,
            &x,
            "UserGet",
            json!({"mode": "login", "identity": who, "request_metadata": md}),
        )
    };
    // Only the name: the email is starred, the number and the rest dropped.
    let r = get("ann", json!({})).expect(200);
    assert_eq!(
        r["profile"],
        json!({"name": "Ann", "email": "***", "ssn": "***", "login": "***"})
    );
    // The consent condition: for marketing, the email of who agreed to marketing.
    let r = get("ann", json!({"purpose": "marketing"})).expect(200);
    assert_eq!(r["profile"]["email"], "ann@example.com");
    let r = get("bo", json!({"purpose": "marketing"})).expect(200);
    assert_eq!(r["profile"]["email"], "***");
    let r = get("bo", json!({"purpose": "support"})).expect(200);
    assert_eq!(r["profile"]["email"], "***");
    // Withdrawn consent takes effect at once.
    v2(
        &s,
        "AgreementCancel",
        json!({"mode": "token", "identity": ann, "brief": "marketing"}),
    )
    .expect(200);
    assert_eq!(
        get("ann", json!({"purpose": "marketing"})).expect(200)["profile"]["email"],
        "***"
    );
    // Not allowed: other methods, v1, reserved methods, and reading nothing.
    for (method, body) in [
        ("UserDelete", json!({"mode": "login", "identity": "ann"})),
        (
            "UserUpdate",
            json!({"mode": "login", "identity": "ann", "profile": {"name": "X"}}),
        ),
        ("TokenCreate", json!({"tokentype": "text", "record": "x"})),
        (
            "AppdataGet",
            json!({"mode": "login", "identity": "ann", "appname": "shop"}),
        ),
        ("PolicyListAllPolicies", json!({})),
        ("RoleCreate", json!({"rolename": "mine"})),
        ("XTokenCreateForRole", json!({"rolename": "support"})),
        ("GroupCreate", json!({"groupname": "mine"})),
    ] {
        let r = as_token(&s, &x, method, body);
        assert_eq!(r.status, 403, "{method}: {}", r.json);
        assert_eq!(r.json["message"], "Access denied", "{method}");
    }
    assert_eq!(
        s.call_as(Some(&x), "GET", "/v1/user/login/ann", Body::None)
            .status,
        403
    );
    v2(&s, "UserGet", json!({"mode": "login", "identity": "ann"})).expect(200);
    // Listings are masked person by person.
    let unlock_id = text(
        &as_token(&s, &x, "BulkListUnlock", json!({})).expect(200),
        "unlockuuid",
    );
    let all = as_token(&s, &x, "BulkListAllUsers", json!({"unlockuuid": unlock_id})).expect(200);
    for row in all["rows"].as_array().unwrap() {
        let p = row["profile"].as_object().unwrap();
        assert_eq!(p["email"], "***", "{row}");
        assert!(p["name"] == "Ann" || p["name"] == "Bo", "{row}");
        assert!(!p.contains_key("age"));
    }
    // A search is checked on what the role sees: the login it may not read finds
    // nobody (no oracle for hidden values), the name it may read is not searched.
    let searched = |token: &str, unlock: &str, identity: &str| -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let r = as_token(
                &s,
                token,
                "UserSearch",
                json!({"identity": identity, "unlockuuid": unlock}),
            );
            if r.status != 503 || std::time::Instant::now() > deadline {
                return r.expect(200);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    let unlock_root = text(
        &v2(&s, "BulkListUnlock", json!({})).expect(200),
        "unlockuuid",
    );
    let by_root = searched(&s.token, &unlock_root, "ann");
    assert_eq!(by_root["rows"][0]["token"], ann.as_str(), "{by_root}");
    let by_role = searched(&x, &unlock_id, "ann");
    assert_eq!(by_role["total"], 0, "{by_role}");
    // Stars do not match stars: the masked login cannot be probed.
    let by_role = searched(&x, &unlock_id, "*** ann");
    assert_eq!(by_role["total"], 0, "{by_role}");
    // Deny wins over allow: with the whole profile allowed, the ssn stays hidden.
    v2(
        &s,
        "RoleLinkPolicy",
        json!({"rolename": "support", "policyid": everything}),
    )
    .expect(200);
    let r = get("bo", json!({})).expect(200);
    assert_eq!(
        r["profile"]["age"], 30,
        "policy changes take effect at the next call"
    );
    assert_eq!(r["profile"]["ssn"], "456");
    v2(
        &s,
        "RoleLinkPolicy",
        json!({"rolename": "support", "policyid": no_ssn}),
    )
    .expect(200);
    let r = get("bo", json!({})).expect(200);
    assert_eq!(r["profile"]["ssn"], "***");
    assert_eq!(r["profile"]["email"], "bo@example.com");
    // The audit log records each decision with the policy that made it.
    let unlock_root = text(
        &v2(&s, "BulkListUnlock", json!({})).expect(200),
        "unlockuuid",
    );
    let log = v2(
        &s,
        "BulkListAllAuditEvents",
        json!({"unlockuuid": unlock_root, "limit": 100}),
    )
    .expect(200);
    let actors: Vec<String> = log["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.to_string())
        .collect();
    let has = |needle: &str| actors.iter().any(|a| a.contains(needle));
    assert!(has(&format!("allow:policy/{names}")), "{log}");
    assert!(has(&format!("allow:policy/{email}")), "{log}");
    assert!(has(&format!("deny:policy/{no_ssn}")), "{log}");
    assert!(has(&format!("allow:policy/{everything}")), "{log}");
    assert!(has("deny:no-policy"), "{log}");
    assert!(has("deny:reserved"), "{log}");
    // An expired role token, a role token of a deleted tenant's name: refused.
    let short = text(
        &v2(
            &s,
            "XTokenCreateForRole",
            json!({"rolename": "support", "finaltime": 1}),
        )
        .expect(200),
        "xtoken",
    );
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(
        as_token(
            &s,
            &short,
            "UserGet",
            json!({"mode": "login", "identity": "ann"})
        )
        .status,
        403
    );
}

/// A Deny of one field is not dodged by a method that reaches more of the person
/// than the field (a change of the whole profile, the report, a share); a share
/// is checked for what it hands out; conditions about a person do not allow calls
/// about nobody; a role with no statement for a listing cannot start one.
fn a_deny_reaches_every_method_that_holds_the_field(b: &Backend) {
    let s = Server::start_with(b, &["--list-users", "true"]);
    s.create_user(json!({"login": "ann", "email": "ann@example.com", "ssn": "123"}));
    let person = json!({"mode": "login", "identity": "ann"});
    let with = |extra: Value| {
        let mut body = person.clone();
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    v2(
        &s,
        "AppdataCreate",
        with(json!({"appname": "shop", "appdata": {"plan": "gold"}})),
    )
    .expect(200);
    let role_token = |role: &str, policies: Vec<Value>| -> String {
        v2(&s, "RoleCreate", json!({"rolename": role})).expect(200);
        for (i, doc) in policies.into_iter().enumerate() {
            let id = v2(
                &s,
                "PolicyCreate",
                json!({"policyname": format!("{role}-{i}"), "policy": doc}),
            )
            .expect(200)["policyid"]
                .clone();
            v2(
                &s,
                "RoleLinkPolicy",
                json!({"rolename": role, "policyid": id}),
            )
            .expect(200);
        }
        text(
            &v2(&s, "XTokenCreateForRole", json!({"rolename": role})).expect(200),
            "xtoken",
        )
    };
    let clerk = role_token(
        "clerk",
        vec![
            json!({"Effect": "Allow", "Action": "*", "Resource": "users.*"}),
            json!({"Effect": "Deny", "Action": "*", "Resource": "users.profile.ssn"}),
        ],
    );
    // Reads are masked field by field; the rest of the person stays reachable.
    let r = as_token(&s, &clerk, "UserGet", person.clone()).expect(200);
    assert_eq!(r["profile"]["ssn"], "***");
    assert_eq!(r["profile"]["email"], "ann@example.com");
    let r = as_token(&s, &clerk, "AppdataGet", with(json!({"appname": "shop"}))).expect(200);
    assert_eq!(r["appdata"]["plan"], "gold", "{r}");
    // Whatever holds or replaces the whole profile is refused.
    for (method, body) in [
        (
            "UserUpdate",
            with(json!({"profile": {"email": "x@example.com"}})),
        ),
        ("SystemGetUserReport", person.clone()),
        ("SharedRecordCreate", with(json!({"fields": "ssn"}))),
    ] {
        let r = as_token(&s, &clerk, method, body);
        assert_eq!(r.status, 403, "{method}: {}", r.json);
    }
    let r = v2(&s, "UserGet", person.clone()).expect(200);
    assert_eq!(r["profile"]["email"], "ann@example.com", "nothing changed");
    // A share is checked for what it hands out: the profile is not the app data.
    let sharer = role_token(
        "sharer",
        vec![
            json!({"Effect": "Allow", "Action": "SharedRecordCreate", "Resource": "users.profile"}),
        ],
    );
    as_token(
        &s,
        &sharer,
        "SharedRecordCreate",
        with(json!({"fields": "email"})),
    )
    .expect(200);
    let r = as_token(
        &s,
        &sharer,
        "SharedRecordCreate",
        with(json!({"app": "shop"})),
    );
    assert_eq!(r.status, 403, "{}", r.json);
    // A condition on the person holds for no call about nobody.
    let tokenizer = role_token(
        "tokenizer",
        vec![json!({"Effect": "Allow", "Action": "TokenCreate",
            "Condition": {"StringNotEquals": {"${agreement:marketing}": "no"}}})],
    );
    let r = as_token(
        &s,
        &tokenizer,
        "TokenCreate",
        json!({"tokentype": "text", "record": "x"}),
    );
    assert_eq!(r.status, 403, "{}", r.json);
    // A role with no statement naming a listing cannot start one, over v2 or v1.
    let unlock = text(
        &v2(&s, "BulkListUnlock", json!({})).expect(200),
        "unlockuuid",
    );
    let r = as_token(
        &s,
        &tokenizer,
        "BulkListAllUsers",
        json!({"unlockuuid": unlock}),
    );
    assert_eq!(r.status, 403, "{}", r.json);
    assert_eq!(
        s.call_as(Some(&clerk), "POST", "/v1/users", Body::None)
            .status,
        403
    );
}

/// A person's access token carries the roles they hold in groups (Databunker Pro's
/// teacher/parent examples): a teacher reads the names of the children of their own
/// class, masked field by field, and nobody else's; in v1 it reaches only their own
/// record, and without a role nothing changes.
fn a_person_s_token_carries_their_group_roles(b: &Backend) {
    let s = Server::start(b);
    let teacher = s.create_user(json!({"login": "teacher", "name": "Ms T"}));
    let kid1 = s.create_user(
        json!({"login": "kid1", "name": "Kid One", "email": "k1@example.com", "age": 9}),
    );
    let kid2 = s.create_user(json!({"login": "kid2", "name": "Kid Two"}));
    let loner = s.create_user(json!({"login": "loner", "name": "Lone"}));
    for g in ["class-a", "class-b"] {
        v2(&s, "GroupCreate", json!({"groupname": g})).expect(200);
    }
    for r in ["teacher", "child", "parent"] {
        v2(&s, "RoleCreate", json!({"rolename": r})).expect(200);
    }
    let policy = v2(
        &s,
        "PolicyCreate",
        json!({"policyname": "class-names", "policy": {
            "Effect": "Allow", "Principal": {"Role": "teacher"}, "Action": "UserGet",
            "Resource": "${target_group_members:role/child}.profile.name",
            "Condition": {"ForAnyValue:ListIntersect": {"${principal_group_id}": "${target_group_id}"}}}}),
    )
    .expect(200)["policyid"]
        .clone();
    v2(
        &s,
        "RoleLinkPolicy",
        json!({"rolename": "teacher", "policyid": policy}),
    )
    .expect(200);
    for (who, group, role) in [
        ("teacher", "class-a", "teacher"),
        ("kid1", "class-a", "child"),
        ("kid2", "class-b", "child"),
        // A parent in class-b is not a teacher there.
        ("teacher", "class-b", "parent"),
    ] {
        v2(
            &s,
            "GroupAddUser",
            json!({"mode": "login", "identity": who, "groupname": group, "rolename": role}),
        )
        .expect(200);
    }
    let token_of = |login: &str| {
        text(
            &v2(
                &s,
                "XTokenCreateForUser",
                json!({"mode": "login", "identity": login, "finaltime": "1h"}),
            )
            .expect(200),
            "xtoken",
        )
    };
    let x = token_of("teacher");
    let get = |token: &str, who: &str| {
        as_token(
            &s,
            token,
            "UserGet",
            json!({"mode": "token", "identity": who}),
        )
    };
    // A child of the teacher's class: the name, the other strings starred, the
    // number dropped.
    let r = get(&x, &kid1).expect(200);
    assert_eq!(
        r["profile"],
        json!({"login": "***", "name": "Kid One", "email": "***"})
    );
    // A child of another class, and someone in no group: refused.
    assert_eq!(get(&x, &kid2).status, 403);
    assert_eq!(get(&x, &loner).status, 403);
    // Nothing but reads: no change, no erasure.
    assert_eq!(
        as_token(
            &s,
            &x,
            "UserDelete",
            json!({"mode": "token", "identity": kid1})
        )
        .status,
        403
    );
    s.get_user("token", &kid1).expect(200);
    // The teacher's own record, whole.
    assert_eq!(get(&x, &teacher).expect(200)["profile"]["name"], "Ms T");
    // v1 knows no policies: the person's own record only.
    let r = s.call_as(
        Some(&x),
        "GET",
        &format!("/v1/user/token/{kid1}"),
        Body::None,
    );
    assert_eq!(r.status, 403, "{}", r.json);
    // A child holds no role with a policy: their token reaches only themselves.
    let k = token_of("kid1");
    assert_eq!(get(&k, &kid2).status, 403);
    assert_eq!(get(&k, &kid1).expect(200)["profile"]["age"], 9);
}
