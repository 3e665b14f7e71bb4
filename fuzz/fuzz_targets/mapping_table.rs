#![no_main]
//! The one-to-one mapping table format (`mapping::table`): one parser, hostile files never
//! panic, and every row or error it reports points at a line of the input.

use certgate::mapping::table::read_table;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let lines = data.iter().filter(|&&b| b == b'\n').count() + 1;
    read_table(data, |row| match row {
        Ok(row) => {
            assert!(
                row.line >= 1 && row.line <= lines,
                "row line {} of {lines}",
                row.line
            );
            assert!(
                !row.user_name.is_empty(),
                "a row without a user was accepted"
            );
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in errors {
                assert!(!e.to_string().is_empty());
            }
        }
    });
});
