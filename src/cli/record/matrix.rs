//! `benchkeep record --matrix NAME=V1,V2 ... -- COMMAND {NAME}`: one recorded run per
//! combination, linked as one matrix; a table at the end.

use anyhow::Result;

use super::{RecordArgs, refuse_output_in_store, request};
use crate::cli::print_out;
use crate::derive::{self, Settings};
use crate::error::exit;
use crate::record::{self, matrix};
use crate::schema::Status;
use crate::store::Store;

pub fn run(store: &Store, settings: &Settings, args: RecordArgs) -> Result<i32> {
    let axes = args
        .matrix
        .iter()
        .map(|s| matrix::parse_axis(s))
        .collect::<Result<Vec<_>, _>>()?;
    let combos = matrix::combinations(&axes)?;
    let output = args
        .output
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    let paths: Vec<&str> = output.iter().map(String::as_str).collect();
    matrix::check_placeholders(&args.command, &paths, &axes)?;

    // Every combination's request is built (and checked) before the first one runs.
    let mut requests = Vec::with_capacity(combos.len());
    for combo in &combos {
        let mut a = args.clone();
        a.matrix.clear();
        a.command = a.command.iter().map(|c| matrix::fill(c, combo)).collect();
        a.output = a
            .output
            .map(|p| matrix::fill(&p.to_string_lossy(), combo).into());
        let mut req = request(a)?;
        refuse_output_in_store(store, &req.output)?;
        record::child::check_program(&req.command, &req.env)?;
        for (name, value) in combo {
            req.config.insert(name.clone(), matrix::config_value(value));
        }
        requests.push((combo.clone(), req));
    }
    store.ensure_layout()?;
    let first = &requests[0].1;
    let date = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let id = matrix::new_id(store, &first.platform, &first.model, &date)?;
    for (index, (combo, req)) in requests.iter_mut().enumerate() {
        req.sweep = Some(matrix::link(&id, index, combo));
    }
    let total = requests.len();
    eprintln!("benchkeep: matrix {id}: {total} combinations");
    let outcomes = matrix::record_all(store, requests, |o| {
        let what: Vec<String> = o.settings.iter().map(|(n, v)| format!("{n}={v}")).collect();
        let how = match &o.run {
            Ok(r) => format!("{} ({})", r.metadata.status, r.metadata.test_id),
            Err(e) => format!("not recorded: {e}"),
        };
        eprintln!(
            "benchkeep: matrix {id} [{}/{total}] {}: {how}",
            o.index + 1,
            what.join(" ")
        );
    })?;
    let derived = derive::refresh(store, settings);

    let runs: Vec<_> = outcomes
        .iter()
        .filter_map(|o| o.run.as_ref().ok().map(|r| r.metadata.clone()))
        .collect();
    let mut text = String::from("\n");
    for mx in crate::report::matrix::build(&runs) {
        text.push_str(&crate::report::matrix::terminal(&mx));
    }
    for o in outcomes.iter().filter(|o| o.run.is_err()) {
        text.push_str(&format!(
            "combination {} was not recorded: {}\n",
            o.index,
            o.run.as_ref().err().map(String::as_str).unwrap_or("")
        ));
    }
    let _ = print_out(&text);

    let interrupted =
        outcomes.len() < total || runs.iter().any(|m| m.status == Status::Interrupted);
    let failed = outcomes.iter().any(|o| match &o.run {
        Ok(r) => r.exit_code != exit::OK || record::OutputState::Analyzed != r.output,
        Err(_) => true,
    });
    if let Err(e) = &derived {
        eprintln!("error: the runs are saved, but regenerating the reports failed: {e:#}");
    }
    Ok(if interrupted {
        eprintln!(
            "benchkeep: the matrix was interrupted after {} of {total} combinations; what ran is saved",
            outcomes.len()
        );
        exit::INTERRUPTED
    } else if failed {
        exit::FAILURE
    } else if derived.is_err() {
        exit::STORE_IO
    } else {
        exit::OK
    })
}
