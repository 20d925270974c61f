//! Typed reads from one TOML table, with the errors and warnings phrased for
//! the user: every message names the file, line and column, the section and
//! key, and what was expected. String values are `${VAR}`-expanded as they are
//! read, so validation always sees the expanded text.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml_edit::{Item, Key, TableLike, Value};

use super::expand::expand;
use super::source::Source;
use super::suggest::did_you_mean;
use super::ConfigError;

/// What every section reader shares: the source for locations, the variable
/// lookup, the directory relative paths are resolved against, and the
/// warnings found so far.
pub(super) struct Ctx<'a> {
    pub source: Source<'a>,
    pub lookup: &'a dyn Fn(&str) -> Option<String>,
    pub base_dir: PathBuf,
    pub warnings: RefCell<Vec<Warning>>,
}

/// A warning found while loading, in file order.
#[derive(Clone, Debug)]
pub(super) struct Warning {
    /// `offload.toml:3:1: unknown key ...`, ready to print.
    pub message: String,
    /// For an unknown key: its dotted name (`offload.retry_cont`).
    pub unknown_key: Option<String>,
}

impl Ctx<'_> {
    pub(super) fn warn(&self, message: String) {
        self.warnings.borrow_mut().push(Warning {
            message,
            unknown_key: None,
        });
    }
}

/// One table of the config (`[offload]`, `[groups.unit]`, the root).
pub(super) struct Section<'a> {
    ctx: &'a Ctx<'a>,
    /// Dotted path, empty for the root: `offload`, `groups.unit`.
    path: String,
    /// The table's own key (`unit`), empty for the root.
    name: String,
    table: &'a dyn TableLike,
    /// Where the table starts (its header), if the file wrote one.
    span: Option<Range<usize>>,
}

impl<'a> Section<'a> {
    pub(super) fn root(ctx: &'a Ctx<'a>, table: &'a dyn TableLike) -> Self {
        Section {
            ctx,
            path: String::new(),
            name: String::new(),
            table,
            span: None,
        }
    }

    /// The sub-table `key`, or `None` if absent. Any other kind of value is
    /// an error (`[provider]` written as `provider = "local"`).
    pub(super) fn section(&self, key: &str) -> Result<Option<Section<'a>>, ConfigError> {
        match self.table.get_key_value(key) {
            Some((k, item)) => self.child(k, item).map(Some),
            None => Ok(None),
        }
    }

    /// Every entry of this table as a sub-table, in file order (`[groups.*]`).
    pub(super) fn sections(&self) -> Result<Vec<Section<'a>>, ConfigError> {
        self.table
            .iter()
            .map(|(name, _)| {
                let (k, item) = self.table.get_key_value(name).expect("key from iter");
                self.child(k, item)
            })
            .collect()
    }

    fn child(&self, key: &'a Key, item: &'a Item) -> Result<Section<'a>, ConfigError> {
        let Some(table) = item.as_table_like() else {
            let message = format!(
                "expected a table ([{}]), found {}",
                self.dotted(key.get()),
                describe(item)
            );
            return Err(self.error(key, item, key.get(), message));
        };
        // A table written only through its children (`[groups.unit]` makes
        // `groups` implicit) has no span of its own; its first key is the
        // best place to point at.
        let span = item.span().or_else(|| key.span()).or_else(|| {
            table
                .iter()
                .next()
                .and_then(|(k, _)| table.key(k).and_then(Key::span))
        });
        Ok(Section {
            ctx: self.ctx,
            path: self.dotted(key.get()),
            name: key.get().to_string(),
            table,
            span,
        })
    }

    /// The table's own key: `unit` for `[groups.unit]`.
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub(super) fn contains(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    /// `offload.max_parallel`, or `bogus` at the root.
    pub(super) fn dotted(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// `[offload] max_parallel`, or `key` at the root.
    fn label(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("[{}] {key}", self.path)
        }
    }

    /// `file:line:col: [section] key: message`, located at `span`.
    pub(super) fn error_at(
        &self,
        span: Option<Range<usize>>,
        key: &str,
        message: impl AsRef<str>,
    ) -> ConfigError {
        ConfigError {
            message: format!(
                "{}: {}: {}",
                self.ctx.source.at(span),
                self.label(key),
                message.as_ref()
            ),
        }
    }

    /// An error about the value of `key`, located at the value.
    fn error(&self, key: &Key, item: &Item, label: &str, message: String) -> ConfigError {
        self.error_at(item.span().or_else(|| key.span()), label, message)
    }

    /// An error about a key this table lacks, located at the table header.
    pub(super) fn missing(&self, key: &str, message: impl AsRef<str>) -> ConfigError {
        self.error_at(self.span.clone(), key, message)
    }

    /// Where the value of `key` is, if present.
    pub(super) fn span_of(&self, key: &str) -> Option<Range<usize>> {
        let (k, item) = self.table.get_key_value(key)?;
        item.span().or_else(|| k.span())
    }

    /// Where element `index` of the array `key` is.
    pub(super) fn span_of_element(&self, key: &str, index: usize) -> Option<Range<usize>> {
        let array = self.table.get(key)?.as_array()?;
        array
            .get(index)
            .and_then(Value::span)
            .or_else(|| self.span_of(key))
    }

    /// A string value, `${VAR}`-expanded.
    pub(super) fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        let Some((k, item)) = self.table.get_key_value(key) else {
            return Ok(None);
        };
        match item.as_value() {
            Some(value) => self.expand_value(key, value).map(Some),
            None => Err(self.error(
                k,
                item,
                key,
                format!("expected a string, found {}", describe(item)),
            )),
        }
    }

    /// A string that must be present and non-empty; `example` completes the
    /// "required" message (`e.g. create_command = "..."`).
    pub(super) fn required_string(
        &self,
        key: &str,
        why: &str,
        example: &str,
    ) -> Result<String, ConfigError> {
        match self.string(key)? {
            None => Err(self.missing(key, format!("missing; {why}, e.g. {key} = {example}"))),
            Some(value) if value.trim().is_empty() => Err(self.error_at(
                self.span_of(key),
                key,
                format!("must not be empty; {why}, e.g. {key} = {example}"),
            )),
            Some(value) => Ok(value),
        }
    }

    fn expand_value(&self, label: &str, value: &Value) -> Result<String, ConfigError> {
        let Some(text) = value.as_str() else {
            return Err(self.error_at(
                value.span(),
                label,
                format!("expected a string, found {}", describe_value(value)),
            ));
        };
        expand(text, self.ctx.lookup).map_err(|e| self.error_at(value.span(), label, e.to_string()))
    }

    /// The `type` tag selecting a provider or framework: a string among
    /// `choices`, with a did-you-mean for typos.
    pub(super) fn tag(
        &self,
        what: &str,
        choices: &[&str],
        example: &str,
    ) -> Result<String, ConfigError> {
        let Some(value) = self.string("type")? else {
            return Err(self.missing(
                "type",
                format!(
                    "missing; expected one of {}, e.g. type = \"{example}\"",
                    choices.join(", ")
                ),
            ));
        };
        let span = self.span_of("type");
        if choices.contains(&value.as_str()) {
            return Ok(value);
        }
        let hint = match did_you_mean(&value, choices) {
            Some(s) => format!(" (did you mean \"{s}\"?)"),
            None => String::new(),
        };
        Err(self.error_at(
            span,
            "type",
            format!(
                "unknown {what} \"{value}\"; expected one of {}{hint}",
                choices.join(", ")
            ),
        ))
    }

    /// A string that must be one of `choices` (`unknown_keys = "error"`).
    pub(super) fn choice(
        &self,
        key: &str,
        choices: &[&str],
    ) -> Result<Option<String>, ConfigError> {
        let Some(value) = self.string(key)? else {
            return Ok(None);
        };
        if choices.contains(&value.as_str()) {
            return Ok(Some(value));
        }
        let hint = match did_you_mean(&value, choices) {
            Some(s) => format!(" (did you mean \"{s}\"?)"),
            None => String::new(),
        };
        let quoted: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
        Err(self.error_at(
            self.span_of(key),
            key,
            format!("expected {}, found \"{value}\"{hint}", quoted.join(" or ")),
        ))
    }

    /// A non-negative integer of at least `min` that fits in `u64`.
    pub(super) fn uint(&self, key: &str, min: u64) -> Result<Option<u64>, ConfigError> {
        let Some((k, item)) = self.table.get_key_value(key) else {
            return Ok(None);
        };
        let fail = |message: String| self.error(k, item, key, message);
        match item.as_value() {
            Some(Value::Integer(i)) => {
                let n = *i.value();
                if n < 0 {
                    Err(fail(format!("expected a non-negative integer, found {n}")))
                } else if (n as u64) < min {
                    Err(fail(format!("must be at least {min}, found {n}")))
                } else {
                    Ok(Some(n as u64))
                }
            }
            Some(Value::Float(f)) => Err(fail(format!(
                "expected a whole number (integer), found float {}",
                f.value()
            ))),
            _ => Err(fail(format!(
                "expected an integer, found {}",
                describe(item)
            ))),
        }
    }

    /// [`Section::uint`] for `u32` fields.
    pub(super) fn uint32(&self, key: &str) -> Result<Option<u32>, ConfigError> {
        match self.uint(key, 0)? {
            None => Ok(None),
            Some(n) => u32::try_from(n).map(Some).map_err(|_| {
                self.error_at(
                    self.span_of(key),
                    key,
                    format!("must be at most {}, found {n}", u32::MAX),
                )
            }),
        }
    }

    pub(super) fn bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        let Some((k, item)) = self.table.get_key_value(key) else {
            return Ok(None);
        };
        match item.as_bool() {
            Some(b) => Ok(Some(b)),
            None => Err(self.error(
                k,
                item,
                key,
                format!("expected true or false, found {}", describe(item)),
            )),
        }
    }

    /// An array of strings, each `${VAR}`-expanded.
    pub(super) fn string_list(&self, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        let Some((k, item)) = self.table.get_key_value(key) else {
            return Ok(None);
        };
        let Some(array) = item.as_array() else {
            return Err(self.error(
                k,
                item,
                key,
                format!("expected an array of strings, found {}", describe(item)),
            ));
        };
        array
            .iter()
            .enumerate()
            .map(|(i, value)| self.expand_value(&format!("{key}[{i}]"), value))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// A table of string values (`env`), each `${VAR}`-expanded.
    pub(super) fn string_map(
        &self,
        key: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ConfigError> {
        let Some((k, item)) = self.table.get_key_value(key) else {
            return Ok(None);
        };
        let Some(table) = item.as_table_like() else {
            return Err(self.error(
                k,
                item,
                key,
                format!(
                    "expected a table of strings (e.g. {key} = {{ NAME = \"value\" }}), found {}",
                    describe(item)
                ),
            ));
        };
        let mut map = BTreeMap::new();
        for (name, value_item) in table.iter() {
            let label = format!("{key}.{name}");
            let value = match value_item.as_value() {
                Some(value) => self.expand_value(&label, value)?,
                None => {
                    let span = value_item
                        .span()
                        .or_else(|| table.key(name).and_then(Key::span));
                    return Err(self.error_at(
                        span,
                        &label,
                        format!("expected a string, found {}", describe(value_item)),
                    ));
                }
            };
            map.insert(name.to_string(), value);
        }
        Ok(Some(map))
    }

    /// A path string, resolved against the config file's directory.
    pub(super) fn path(&self, key: &str) -> Result<Option<PathBuf>, ConfigError> {
        match self.string(key)? {
            Some(text) if text.is_empty() => Err(self.error_at(
                self.span_of(key),
                key,
                "must not be empty; leave the key out to use the default",
            )),
            Some(text) => Ok(Some(resolve(&self.ctx.base_dir, Path::new(&text)))),
            None => Ok(None),
        }
    }

    /// `relative` resolved against the config file's directory.
    pub(super) fn resolve(&self, relative: &str) -> PathBuf {
        resolve(&self.ctx.base_dir, Path::new(relative))
    }

    /// Warn about every key not in `known`, with a hint: a close key of
    /// this table, or the table a key belongs to when it is misplaced.
    /// `elsewhere` lists the other tables as (`[report]`, its keys).
    pub(super) fn warn_unknown(&self, known: &[&str], elsewhere: &[(&str, &[&str])]) {
        for (name, item) in self.table.iter() {
            if known.contains(&name) {
                continue;
            }
            // A table is best located by its `[header]`, a value by its key.
            let key_span = self.table.key(name).and_then(Key::span);
            let span = if item.is_table() {
                item.span().or(key_span)
            } else {
                key_span.or_else(|| item.span())
            };
            let misplaced = elsewhere.iter().find(|(_, keys)| keys.contains(&name));
            let hint = if let Some((place, _)) = misplaced {
                format!(" (it is a setting of {place})")
            } else if let Some(close) = did_you_mean(name, known) {
                format!(" (did you mean `{close}`?)")
            } else if let Some((close, place)) = elsewhere
                .iter()
                .find_map(|(place, keys)| did_you_mean(name, keys).map(|c| (c, place)))
            {
                format!(" (did you mean `{close}`? it is a setting of {place})")
            } else {
                String::new()
            };
            self.ctx.warnings.borrow_mut().push(Warning {
                message: format!(
                    "{}: unknown key `{}`{hint}",
                    self.ctx.source.at(span),
                    self.dotted(name)
                ),
                unknown_key: Some(self.dotted(name)),
            });
        }
    }

    /// Record a warning about `key`, located at its value.
    pub(super) fn warn(&self, key: &str, message: &str) {
        self.ctx.warn(format!(
            "{}: {}: {message}",
            self.ctx.source.at(self.span_of(key)),
            self.label(key)
        ));
    }
}

/// `base/relative`, lexically tidied (`./x` → `x`); absolute paths are kept.
pub(super) fn resolve(base: &Path, path: &Path) -> PathBuf {
    base.join(path).components().collect()
}

/// "string \"x\"", "integer 5", "a table", for type errors.
fn describe(item: &Item) -> String {
    match item {
        Item::Value(value) => describe_value(value),
        Item::Table(_) => "a table".to_string(),
        Item::ArrayOfTables(_) => "an array of tables".to_string(),
        Item::None => "nothing".to_string(),
    }
}

fn describe_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("string {:?}", s.value()),
        Value::Integer(i) => format!("integer {}", i.value()),
        Value::Float(f) => format!("float {}", f.value()),
        Value::Boolean(b) => format!("boolean {}", b.value()),
        Value::Datetime(d) => format!("datetime {}", d.value()),
        Value::Array(_) => "an array".to_string(),
        Value::InlineTable(_) => "a table".to_string(),
    }
}
