//! Property plumbing shared by the elements' `ObjectImpl::set_property`.
//!
//! Each property is stored into its settings field with one info line on the element's debug
//! category, with the element as the log object and the caller's file and line as the source:
//! `name: old -> new`.
//!
//! ```ignore
//! fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
//!     let set = property::Setter::new(&CAT, self, pspec, value);
//!     let mut settings = self.settings.lock().unwrap();
//!     match pspec.name() {
//!         "margin" => set.store(&mut settings.margin),
//!         _ => unimplemented!(),
//!     }
//! }
//! ```

use std::fmt::{self, Debug, Display};
use std::panic::Location;
use std::path::PathBuf;

use gst::glib;
use gst::log::DebugLogger;
use gst::prelude::*;
use gst::subclass::prelude::*;

/// The `f64` value of a double property whose default is the core's `f32` constant `v`: the
/// double with the same shortest decimal (0.03, not 0.029999999329447746), so the property
/// shows the value as the core writes it and converts back to exactly `v`.
pub fn double(v: f32) -> f64 {
    v.to_string()
        .parse()
        .expect("an f32's decimal is a valid f64")
}

/// The `model` property of an element running a shipped network: `what` says what the model
/// must be, `shipped` names the default, found as `file` in the core's model search order
/// (`slimmatte::paths`). Changeable up to READY.
pub fn model(nick: &str, what: &str, shipped: &str, file: &str) -> glib::ParamSpec {
    model_named("model", nick, what, shipped, file)
}

/// [`model`] under another property name (an element with a second network).
pub fn model_named(
    name: &str,
    nick: &str,
    what: &str,
    shipped: &str,
    file: &str,
) -> glib::ParamSpec {
    glib::ParamSpecString::builder(name)
        .nick(nick)
        .blurb(&format!(
            "{what}; unset = {shipped} ({file} from ${}, the XDG data dirs' slimmatte/models, \
             next to the plugin, or the source checkout, in that order)",
            slimmatte::paths::MODEL_DIR_ENV
        ))
        .mutable_ready()
        .build()
}

/// One `set_property` call: the element, its debug category, the property and its new value.
pub struct Setter<'a, S: ObjectSubclass> {
    cat: &'a gst::DebugCategory,
    imp: &'a S,
    pspec: &'a glib::ParamSpec,
    value: &'a glib::Value,
}

impl<'a, S> Setter<'a, S>
where
    S: ObjectSubclass,
    S::Type: IsA<glib::Object>,
{
    pub fn new(
        cat: &'a gst::DebugCategory,
        imp: &'a S,
        pspec: &'a glib::ParamSpec,
        value: &'a glib::Value,
    ) -> Self {
        Self {
            cat,
            imp,
            pspec,
            value,
        }
    }

    /// Stores the new value into `field`, logging `name: old -> new` (`Debug` of both).
    #[track_caller]
    pub fn store<T>(&self, field: &mut T)
    where
        T: for<'v> glib::value::FromValue<'v> + Debug,
    {
        self.replace(field, self.get());
    }

    /// Stores the new value, converted by `convert`, into `field`: a core setting behind a
    /// property of another type (a core enum behind its GLib mirror), logging
    /// `name: old -> new` (`Debug` of both).
    #[track_caller]
    pub fn store_into<V, T>(&self, field: &mut T, convert: impl FnOnce(V) -> T)
    where
        V: for<'v> glib::value::FromValue<'v>,
        T: Debug,
    {
        self.replace(field, convert(self.get()));
    }

    /// Stores a double property into the core's `f32` setting `field`.
    #[track_caller]
    pub fn store_f32(&self, field: &mut f32) {
        self.store_into(field, |v: f64| v as f32);
    }

    /// Like [`store`](Self::store), logging the values as `show` writes them (e.g. a colour
    /// in hex).
    #[track_caller]
    pub fn store_with<T, D>(&self, field: &mut T, show: impl Fn(&T) -> D)
    where
        T: for<'v> glib::value::FromValue<'v>,
        D: Display,
    {
        let new: T = self.get();
        self.log(format_args!("{} -> {}", show(field), show(&new)));
        *field = new;
    }

    /// Stores a string property that names a file: unset or empty is `None`.
    #[track_caller]
    pub fn store_path(&self, field: &mut Option<PathBuf>) {
        let new = self
            .get::<Option<String>>()
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        self.replace(field, new);
    }

    /// The new value as a `T`. GObject checked its type against the `ParamSpec` before
    /// calling `set_property`, so a mismatch is a bug in the element.
    fn get<T: for<'v> glib::value::FromValue<'v>>(&self) -> T {
        self.value.get().expect("type checked upstream")
    }

    /// Stores `new` into `field`, logging `name: old -> new` (`Debug` of both).
    #[track_caller]
    fn replace<T: Debug>(&self, field: &mut T, new: T) {
        self.log(format_args!("{field:?} -> {new:?}"));
        *field = new;
    }

    /// Logs `name: <change>` at info level, with the element as the object and the caller
    /// (the element's `set_property`) as the source location.
    #[track_caller]
    fn log(&self, change: fmt::Arguments) {
        const LEVEL: gst::DebugLevel = gst::DebugLevel::Info;
        if self.cat.above_threshold(LEVEL) {
            let at = Location::caller();
            self.cat.log_unfiltered(
                Some(&*self.imp.obj()),
                LEVEL,
                glib::GString::from(at.file()).as_gstr(),
                "set_property",
                at.line(),
                format_args!("{}: {change}", self.pspec.name()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::double;

    #[test]
    fn doubles_keep_the_decimal_and_round_trip() {
        assert_eq!(double(0.03), 0.03);
        assert_eq!(double(0.25), 0.25);
        assert_eq!(double(1e-6), 1e-6);
        for v in [0.0f32, 0.03, 0.1, 0.5, 12.0, 1e-7, 0.95, f32::MAX] {
            assert_eq!(double(v) as f32, v, "{v}");
        }
    }
}
