//! The aggregation operators of mongod 8.0 that rewind does not implement, so that using one
//! answers 238 NotImplemented naming it, while a misspelt name keeps mongod's "unrecognized"
//! error (168 or 15952).

use crate::error::QueryError;

/// mongod 8.0's expression operators (those rewind implements are matched before this list
/// is consulted).
#[rustfmt::skip]
const EXPRESSIONS: &[&str] = &[
    "$abs", "$accumulator", "$acos", "$acosh", "$add", "$allElementsTrue", "$and",
    "$anyElementTrue", "$arrayElemAt", "$arrayToObject", "$asin", "$asinh", "$atan", "$atan2",
    "$atanh", "$avg", "$binarySize", "$bitAnd", "$bitNot", "$bitOr", "$bitXor", "$bsonSize",
    "$ceil", "$cmp", "$concat", "$concatArrays", "$cond", "$convert", "$cos", "$cosh",
    "$createObjectId", "$dateAdd", "$dateDiff", "$dateFromParts", "$dateFromString",
    "$dateSubtract", "$dateToParts", "$dateToString", "$dateTrunc", "$dayOfMonth", "$dayOfWeek",
    "$dayOfYear", "$degreesToRadians", "$divide", "$eq", "$exp", "$filter", "$first", "$firstN",
    "$floor", "$function", "$getField", "$gt", "$gte", "$hour", "$ifNull", "$in", "$indexOfArray",
    "$indexOfBytes", "$indexOfCP", "$isArray", "$isNumber", "$isoDayOfWeek", "$isoWeek",
    "$isoWeekYear", "$last", "$lastN", "$let", "$literal", "$ln", "$log", "$log10", "$lt", "$lte",
    "$ltrim", "$map", "$max", "$maxN", "$median", "$mergeObjects", "$meta", "$millisecond", "$min",
    "$minN", "$minute", "$mod", "$month", "$multiply", "$ne", "$not", "$objectToArray", "$or",
    "$percentile", "$pow", "$radiansToDegrees", "$rand", "$range", "$reduce", "$regexFind",
    "$regexFindAll", "$regexMatch", "$replaceAll", "$replaceOne", "$reverseArray", "$round",
    "$rtrim", "$sampleRate", "$second", "$setDifference", "$setEquals", "$setField",
    "$setIntersection", "$setIsSubset", "$setUnion", "$sin", "$sinh", "$size", "$slice",
    "$sortArray", "$split", "$sqrt", "$stdDevPop", "$stdDevSamp", "$strcasecmp", "$strLenBytes",
    "$strLenCP", "$substr", "$substrBytes", "$substrCP", "$subtract", "$sum", "$switch", "$tan",
    "$tanh", "$toBool", "$toDate", "$toDecimal", "$toDouble", "$toHashedIndexKey", "$toInt",
    "$toLong", "$toLower", "$toObjectId", "$toString", "$toUpper", "$toUUID", "$trim", "$trunc",
    "$tsIncrement", "$tsSecond", "$type", "$unsetField", "$week", "$year", "$zip",
];

/// mongod 8.0's `$group` accumulators.
#[rustfmt::skip]
const ACCUMULATORS: &[&str] = &[
    "$accumulator", "$addToSet", "$avg", "$bottom", "$bottomN", "$count", "$first", "$firstN",
    "$last", "$lastN", "$max", "$maxN", "$median", "$mergeObjects", "$min", "$minN", "$percentile",
    "$push", "$stdDevPop", "$stdDevSamp", "$sum", "$top", "$topN",
];

/// mongod 8.0's system variables (`$$NAME`).
#[rustfmt::skip]
const VARIABLES: &[&str] = &[
    "NOW", "CLUSTER_TIME", "ROOT", "CURRENT", "REMOVE", "DESCEND", "PRUNE", "KEEP", "SEARCH_META",
    "USER_ROLES",
];

/// The error for an expression operator rewind does not know: 238 when mongod has it.
pub(super) fn expression(name: &str) -> QueryError {
    if EXPRESSIONS.contains(&name) {
        QueryError::not_implemented(format!("expression '{name}' is not supported by rewind"))
    } else {
        QueryError::invalid_pipeline_operator(format!("Unrecognized expression '{name}'"))
    }
}

/// The error for a `$group` accumulator rewind does not know: 238 when mongod has it.
pub(super) fn accumulator(name: &str) -> QueryError {
    if ACCUMULATORS.contains(&name) {
        QueryError::not_implemented(format!("accumulator '{name}' is not supported by rewind"))
    } else {
        QueryError::location(15952, format!("unknown group operator '{name}'"))
    }
}

/// The error for a variable rewind does not know: 238 when it is one of mongod's.
pub(super) fn variable(name: &str) -> QueryError {
    if VARIABLES.contains(&name) {
        QueryError::not_implemented(format!("variable '$${name}' is not supported by rewind"))
    } else {
        QueryError::location(17276, format!("Use of undefined variable: {name}"))
    }
}
