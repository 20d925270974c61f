//! Writing the merged JUnit report.
