use crate::constraint::ConstraintError;

/// A request's tools that cannot be used, or a model that cannot use them, in words that name
/// the problem: all of them are the request's to fix (`invalid_request`), and
/// `NoToolSupport` / `UnreadableFormat` say the model cannot do it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    #[error("tools[{index}] has no function name")]
    Unnamed { index: usize },
    #[error("two tools are named \"{name}\": function names must be unique")]
    DuplicateName { name: String },
    #[error("the parameters of tool \"{name}\" must be a JSON schema object")]
    Parameters { name: String },
    #[error("tool_choice names the function \"{name}\", which is not one of the tools")]
    UnknownChoice { name: String },
    #[error("tool_choice {choice} needs tools, and none were given")]
    ChoiceWithoutTools { choice: String },
    #[error("the model's chat template has no tool support")]
    NoToolSupport,
    #[error("the model's chat template takes tools, but its tool calls are in a format Torchlight cannot read")]
    UnreadableFormat,
    #[error("the parameters of tool \"{name}\" cannot be compiled: {message}")]
    Schema { name: String, message: String },
    /// A required call's grammar that cannot be compiled for another reason.
    #[error(transparent)]
    Constraint(#[from] ConstraintError),
}
