//! Model check of data scopes: for random trees, random scopes and random edits made anywhere
//! a writer may make them, once the tree has converged every node holds exactly the patients
//! (and their observations) whose organisation every scope on its way to the root admits.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{TestNet, fhir};
use proptest::prelude::*;
use sync_host::audit::Outcome;
use sync_host::network::{NodeSpec, sample};

const ORGS: [&str; 4] = ["o1", "o2", "o3", "o4"];

/// A tree: node 0 is the root, node `i` hangs under `parents[i - 1]` (an earlier node) with
/// the organisations its parent scopes it to (`None`: everything).
#[derive(Debug, Clone)]
struct Tree {
    parents: Vec<usize>,
    scopes: Vec<Option<BTreeSet<usize>>>,
}

/// A patient of organisation `org` written at `node`, with an observation or not.
#[derive(Debug, Clone)]
struct Edit {
    node: usize,
    patient: usize,
    org: usize,
    observed: bool,
}

fn arb_tree() -> impl Strategy<Value = Tree> {
    (2usize..=5).prop_flat_map(|below| {
        let parents = (0..below).map(|i| 0..=i).collect::<Vec<_>>();
        let scopes = proptest::collection::vec(
            proptest::option::weighted(0.75, proptest::collection::btree_set(0..ORGS.len(), 1..=3)),
            below,
        );
        (parents, scopes).prop_map(|(parents, scopes)| Tree { parents, scopes })
    })
}

fn arb_edits() -> impl Strategy<Value = Vec<Edit>> {
    proptest::collection::vec(
        (0usize..6, 0usize..8, 0..ORGS.len(), any::<bool>()).prop_map(
            |(node, patient, org, observed)| Edit {
                node,
                patient,
                org,
                observed,
            },
        ),
        1..14,
    )
}

fn name(node: usize) -> String {
    if node == 0 {
        "root".to_owned()
    } else {
        format!("n{node}")
    }
}

impl Tree {
    fn len(&self) -> usize {
        self.parents.len() + 1
    }

    fn parent(&self, node: usize) -> Option<usize> {
        node.checked_sub(1).map(|i| self.parents[i])
    }

    /// Whether every scope between `node` and the root admits organisation `org`.
    fn admits(&self, node: usize, org: usize) -> bool {
        let mut at = Some(node);
        while let Some(n) = at {
            if n > 0
                && let Some(scope) = &self.scopes[n - 1]
                && !scope.contains(&org)
            {
                return false;
            }
            at = self.parent(n);
        }
        true
    }

    fn specs(&self) -> Vec<NodeSpec> {
        (0..self.len())
            .map(|n| {
                let parent = self.parent(n).map(name);
                let mut spec = NodeSpec::new(&name(n), parent.as_deref());
                if n > 0 {
                    spec.data_scope = self.scopes[n - 1].as_ref().map(|orgs| {
                        orgs.iter()
                            .map(|&o| format!("Organization/{}", ORGS[o]))
                            .collect()
                    });
                }
                spec
            })
            .collect()
    }
}

/// The edits a real user could make: each patient belongs to the first node that writes it,
/// which must be able to see it; later edits of it come from that node only.
fn allowed(tree: &Tree, edits: Vec<Edit>) -> Vec<Edit> {
    let mut owners: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    edits
        .into_iter()
        .map(|mut edit| {
            edit.node %= tree.len();
            edit
        })
        .filter(|edit| {
            let owner = *owners.entry(edit.patient).or_insert((edit.node, edit.org));
            owner == (edit.node, edit.org) && tree.admits(edit.node, edit.org)
        })
        .collect()
}

async fn check(tree: Tree, edits: Vec<Edit>) -> anyhow::Result<()> {
    let edits = allowed(&tree, edits);
    let t = TestNet::start(tree.specs()).await?;
    let mut org_of = BTreeMap::new();
    let mut observed = BTreeSet::new();
    for (i, edit) in edits.iter().enumerate() {
        let store = t.store(&name(edit.node));
        let id = format!("p{}", edit.patient);
        let family = format!("Family{i}");
        let body = sample::managed_patient(&id, "Amina", &family, "1990-05-01", ORGS[edit.org]);
        sample::put_fhir(store, "Patient", &id, body).await?;
        org_of.insert(edit.patient, edit.org);
        if edit.observed {
            let obs = format!("{id}-obs");
            sample::put_fhir(
                store,
                "Observation",
                &obs,
                sample::weight(&obs, &id, "60.5"),
            )
            .await?;
            observed.insert(edit.patient);
        }
    }
    t.settle().await?;
    for node in 0..tree.len() {
        let id = name(node);
        for (&patient, &org) in &org_of {
            let want = tree.admits(node, org);
            let held = t
                .body(&id, &fhir("Patient", &format!("p{patient}")))
                .is_some();
            anyhow::ensure!(
                held == want,
                "{id}: patient p{patient} of {} held: {held}",
                ORGS[org]
            );
            if observed.contains(&patient) {
                let obs = fhir("Observation", &format!("p{patient}-obs"));
                let held = t.body(&id, &obs).is_some();
                anyhow::ensure!(held == want, "{id}: {obs} held: {held}");
            }
        }
        let failed = t
            .audit(&id)
            .into_iter()
            .filter(|r| matches!(r.outcome, Outcome::Failed { .. }))
            .count();
        anyhow::ensure!(failed == 0, "{id}: {failed} failed events");
    }
    t.assert_converged();
    t.shutdown().await;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn every_node_holds_what_its_scopes_admit(tree in arb_tree(), edits in arb_edits()) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let outcome = runtime.block_on(check(tree, edits));
        prop_assert!(outcome.is_ok(), "{:?}", outcome.err());
    }
}
