//! The Jenkinsfile and `ci/pipeline.sh` run the same stages in the same order, each one a stage
//! that `ci/stage.sh` knows: a stage added to one and not the other fails here.

use std::path::Path;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The word after `marker` on every line holding it, in order.
fn words_after(text: &str, marker: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.split_once(marker))
        .filter_map(|(_, rest)| rest.split_whitespace().next())
        .map(|w| w.trim_matches(|c| c == '"' || c == '\'').to_owned())
        .collect()
}

#[test]
fn jenkinsfile_and_pipeline_script_run_the_same_stages() {
    let jenkins = words_after(&read("ci/Jenkinsfile"), "sh \"ci/stage.sh ");
    let local: Vec<String> = words_after(&read("ci/pipeline.sh"), "run_stage ")
        .into_iter()
        .filter(|w| !w.starts_with('{') && !w.starts_with('('))
        .collect();
    assert_eq!(
        jenkins,
        ["build-test", "image", "smoke-test", "push", "plan", "apply"],
        "the Jenkinsfile's stages"
    );
    assert_eq!(
        local, jenkins,
        "ci/pipeline.sh runs other stages than the Jenkinsfile"
    );

    let stage_script = read("ci/stage.sh");
    for stage in &jenkins {
        assert!(
            stage_script.contains(&format!("\n  {stage})")),
            "ci/stage.sh has no case for stage {stage}"
        );
    }
}
