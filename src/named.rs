//! Closed choices that know their names: the [`Named`] trait and the [`named_enum!`] macro that
//! implements it.
//!
//! Every closed choice of a config (color space, data set, backbone, loss, optimizer, ...) and every
//! metric is an enum declared with [`named_enum!`]: each variant is written once, with the name specs,
//! the command line and results files spell. The schema's choice lists ([`Named::NAMES`]), parsing
//! ([`Named::parse`]) and printing (`Display`) all come from that one declaration, so a name cannot
//! be valid in one place and unknown in another, and a `match` on the enum has no `_ =>` fallback to
//! forget a new variant in.
//!
//! An enum whose variants are implementations of an extension point (a color space, a loss) also
//! names each variant's implementation in its arm (`Lab = "lab" => &lab::Lab`): the macro generates
//! the method returning it, so registering an implementation is that one arm.

/// A closed set of choices, each with the name that specs, the command line and results files spell.
pub trait Named: Copy + Eq + std::fmt::Debug + 'static {
    /// Every choice, in declaration order (the order documentation and error messages list them).
    const ALL: &'static [Self];
    /// Their names, in the same order.
    const NAMES: &'static [&'static str];

    /// This choice's name.
    fn name(self) -> &'static str;

    /// The choice called `name`, if there is one.
    fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.name() == name)
    }
}

/// Declares an enum of named choices and implements [`Named`] and `Display` (its name) for it.
///
/// ```ignore
/// named_enum! {
///     /// Which data set a run uses.
///     pub enum DatasetKind {
///         /// The built-in procedural set.
///         Synthetic = "synthetic",
///         Cifar10 = "cifar10",
///     }
/// }
/// ```
///
/// With `: method() -> Type` after the name, every arm also gives its implementation
/// (`Lab = "lab" => &lab::Lab`) and the enum gets `fn method(self) -> Type` returning it.
/// `ALL`, `NAMES` and `name` are also inherent (arrays and a `const fn`), usable without the trait
/// in scope and in constants such as a results file's columns.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident : $method:ident() -> $imp:ty {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal => $value:expr ),+ $(,)?
        }
    ) => {
        $crate::named::named_enum! {
            $(#[$meta])*
            $vis enum $name { $( $(#[$vmeta])* $variant = $text ),+ }
        }
        impl $name {
            /// What this choice's arm gives: its implementation.
            pub fn $method(self) -> $imp {
                match self {
                    $( $name::$variant => $value ),+
                }
            }
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }
        impl $name {
            /// Every choice, in declaration order.
            pub const ALL: [Self; [$( $text ),+].len()] = [$( $name::$variant ),+];
            /// Their names, in the same order.
            pub const NAMES: [&'static str; [$( $text ),+].len()] = [$( $text ),+];

            /// The name specs, the command line and results files spell.
            pub const fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),+
                }
            }
        }
        impl $crate::named::Named for $name {
            const ALL: &'static [Self] = &$name::ALL;
            const NAMES: &'static [&'static str] = &$name::NAMES;
            fn name(self) -> &'static str {
                $name::name(self)
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}
pub(crate) use named_enum;

#[cfg(test)]
mod tests {
    use super::Named;

    named_enum! {
        /// A choice for the tests.
        enum Fruit: colour() -> &'static str {
            Apple = "apple" => "green",
            /// The second one.
            BloodOrange = "blood_orange" => "red",
        }
    }

    #[test]
    fn names_parse_print_and_list_in_declaration_order() {
        assert_eq!(Fruit::NAMES, ["apple", "blood_orange"]);
        assert_eq!(<Fruit as Named>::ALL, [Fruit::Apple, Fruit::BloodOrange]);
        for fruit in Fruit::ALL {
            assert_eq!(Fruit::parse(fruit.name()), Some(fruit));
            assert_eq!(fruit.to_string(), fruit.name());
        }
        assert_eq!(Fruit::parse("Apple"), None, "names are exact");
        assert_eq!(Fruit::parse("pear"), None);
        assert_eq!(Fruit::BloodOrange.colour(), "red");
        const NAME: &str = Fruit::Apple.name();
        assert_eq!(NAME, "apple");
    }
}
